module github.com/zerohop/zerohop/invalidate/redisbridge

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/redis/go-redis/v9 v9.23.0
	github.com/zerohop/zerohop/invalidate v0.0.0-00010101000000-000000000000
	github.com/zerohop/zerohop/shm v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/edsrzf/mmap-go v1.2.0 // indirect
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

replace (
	github.com/zerohop/zerohop/internal/testproc => ../../internal/testproc
	github.com/zerohop/zerohop/invalidate => ..
	github.com/zerohop/zerohop/shm => ../../shm
)
