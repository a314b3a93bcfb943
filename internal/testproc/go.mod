module github.com/zerohop/zerohop/internal/testproc

go 1.17
