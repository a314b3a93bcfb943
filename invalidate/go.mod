module github.com/zerohop/zerohop/invalidate

go 1.22

require (
	github.com/HdrHistogram/hdrhistogram-go v1.1.2
	github.com/fsnotify/fsnotify v1.9.0
	github.com/zerohop/zerohop/internal/testproc v0.0.0-00010101000000-000000000000
	github.com/zerohop/zerohop/shm v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.30.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/edsrzf/mmap-go v1.2.0 // indirect
)

replace (
	github.com/zerohop/zerohop/internal/testproc => ../internal/testproc
	github.com/zerohop/zerohop/shm => ../shm
)
