package sniff

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Kind
	}{
		{"", NeedMore},
		{"G", NeedMore},
		{"GET", NeedMore},
		{"GET ", NeedMore},
		{"GET /x HTTP/1.1\r\n", HTTP},
		{"POST /x HTTP/1.1\r\n", HTTP},
		{"OPTIONS * HTTP/1.1\r\n", HTTP},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP},
		{"GET http://a/ HTTP/1.1\r\n", HTTP},
		{"CONNECT a:443 HTTP/1.1\r\n", HTTP},
		{"get / HTTP/1.1", Other},
		{"SSH-2.0-OpenSSH_9.2\r\n", Other},
		{"EHLO x", Other},
		{"\x16\x03\x01\x02\x00", TLS},
		{"\x16\x03", NeedMore},
		{"\x16\x09\x01", Other},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Other},
		{"\x00\x01", Other},
		{" GET /", Other},
	} {
		if got := Classify([]byte(tt.in)); got != tt.want {
			t.Errorf("Classify(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// clientHello returns the first flight a real crypto/tls client sends
// for server name sni.
func clientHello(t testing.TB, sni string) []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Handshake()
	}()
	buf := make([]byte, 64<<10)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	n := 0
	for {
		m, err := b.Read(buf[n:])
		n += m
		if err != nil {
			t.Fatal(err)
		}
		if l := RecordLen(buf[:n]); l > 0 && n >= l {
			return buf[:l]
		}
	}
}

func TestServerName(t *testing.T) {
	for _, sni := range []string{"example.com", "api.internal.example", ""} {
		hello := clientHello(t, sni)
		if Classify(hello) != TLS {
			t.Fatalf("a ClientHello is not classified TLS")
		}
		got, err := ServerName(hello)
		if err != nil || got != sni {
			t.Errorf("ServerName = %q, %v; want %q", got, err, sni)
		}
		for cut := 0; cut < len(hello); cut += 7 {
			if _, err := ServerName(hello[:cut]); err == nil {
				t.Errorf("ServerName of %d of %d bytes: no error", cut, len(hello))
			}
		}
	}
	if _, err := ServerName([]byte("\x16\x03\x01\x00\x04\x02\x00\x00\x00")); err != ErrNotHello {
		t.Errorf("a ServerHello: %v; want ErrNotHello", err)
	}
}

// FuzzServerName: the parser reads bytes a client controls; it must
// never panic or read past them, and a name it returns comes from them.
func FuzzServerName(f *testing.F) {
	f.Add(clientHello(f, "example.com"))
	f.Add([]byte("\x16\x03\x01\x00\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Classify(b)
		name, err := ServerName(b)
		if err != nil && name != "" {
			t.Errorf("a name with an error")
		}
		if len(name) > len(b) {
			t.Errorf("name longer than the input")
		}
	})
}
