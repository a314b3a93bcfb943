package nbconn_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/zerohop/zerohop/internal/nbconn"
)

// pair returns a wrapped client connection and the server side of a
// loopback TCP connection.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	w := nbconn.Wrap(c)
	t.Cleanup(func() { w.Close(); s.Close() })
	return w, s
}

func TestReadWrite(t *testing.T) {
	c, s := pair(t)
	if isRaw(c) != rawPlatform {
		t.Fatalf("Wrap(*net.TCPConn) = %T on a platform where raw calls are %v", c, rawPlatform)
	}
	// More than the socket buffers hold, so that Write meets EAGAIN and
	// waits on the poller.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		done <- err
	}()
	got, err := io.ReadAll(io.LimitReader(s, int64(len(big))))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("server read %d bytes, err %v; want the %d written", len(got), err, len(big))
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	// And back, a read that first waits for data.
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("pong"))
	}()
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
}

func TestErrors(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		c, _ := pair(t)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 8))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read past the deadline: %v; want a timeout", err)
		}
	})
	t.Run("EOF", func(t *testing.T) {
		c, s := pair(t)
		s.Close()
		if _, err := c.Read(make([]byte, 8)); err != io.EOF {
			t.Errorf("Read after the peer closed: %v; want io.EOF", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, s := pair(t)
		s.(*net.TCPConn).SetLinger(0)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		var err error
		for i := 0; i < 10 && err == nil; i++ {
			_, err = c.Write([]byte("x"))
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Write to a reset connection: %v; want ECONNRESET or EPIPE (and no SIGPIPE)", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, _ := pair(t)
		c.Close()
		if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v; want net.ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v; want net.ErrClosed", err)
		}
	})
	t.Run("close unblocks a read", func(t *testing.T) {
		c, _ := pair(t)
		go func() { time.Sleep(20 * time.Millisecond); c.Close() }()
		if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read interrupted by Close: %v; want net.ErrClosed", err)
		}
	})
}

func TestCloseWrite(t *testing.T) {
	c, s := pair(t)
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("a wrapped connection must keep CloseWrite (tunnels half-close)")
	}
	c.Write([]byte("last"))
	cw.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last" {
		t.Fatalf("server read %q, %v", got, err)
	}
	s.Write([]byte("reply"))
	buf := make([]byte, 8)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "reply" {
		t.Errorf("read after CloseWrite: %q, %v", buf[:n], err)
	}
}

// BenchmarkPingPong compares a request/response exchange over loopback
// through a wrapped and a plain connection.
func BenchmarkPingPong(b *testing.B) {
	for _, wrap := range []bool{false, true} {
		name := "net"
		if wrap {
			name = "nbconn"
		}
		b.Run(name, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			go func() {
				s, err := ln.Accept()
				if err != nil {
					return
				}
				if wrap {
					s = nbconn.Wrap(s)
				}
				buf := make([]byte, 64)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					s.Write(buf[:n])
				}
			}()
			c, _ := net.Dial("tcp", ln.Addr().String())
			if wrap {
				c = nbconn.Wrap(c)
			}
			defer c.Close()
			msg, buf := []byte("ping"), make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				c.Write(msg)
				io.ReadFull(c, buf[:len(msg)])
			}
		})
	}
}
