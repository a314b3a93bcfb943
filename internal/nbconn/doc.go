// Package nbconn makes the reads and writes of a TCP connection with raw
// system calls on its non-blocking socket.
//
// Go's net.Conn enters the scheduler's system-call state around every
// read and write. When the process was idle, the monitor thread (sysmon)
// is parked, and entering that state wakes it: a futex call and, on a
// virtual machine, often a wakeup of another vCPU, for every request that
// arrives at an idle sidecar. A read or write on a non-blocking socket
// never blocks, so it needs none of that: this package issues it with
// syscall.RawSyscall from inside syscall.RawConn's Read and Write, which
// still park the goroutine on the network poller when the socket is not
// ready and still honour deadlines.
//
// Elsewhere than Linux, and on linux/386, Wrap returns the connection
// unchanged.
package nbconn
