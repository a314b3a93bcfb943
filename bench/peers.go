package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A process is a server the suite started: a peer (nginx, Varnish,
// HAProxy, Redis) or the zerohop sidecar. Each runs in the foreground as a
// plain command, so its PID is the one the suite stops.
type process struct {
	name   string
	cmd    *exec.Cmd
	dir    string
	stderr bytes.Buffer
	done   chan struct{}
}

func startProcess(name, dir string, bin string, args ...string) (*process, error) {
	p := &process{name: name, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stderr = &p.stderr
	p.cmd.Stdout = &p.stderr
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// Stop ends the process by its PID: SIGTERM, then SIGKILL after 5s.
func (p *process) Stop() {
	if p == nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.cmd.Process.Kill() // no SIGTERM on Windows; or already gone
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// cpuSeconds is the user+system CPU time so far of a process and of its
// descendants still running (Varnish serves from a child process), from
// /proc.
func cpuSeconds(pid int) (float64, error) {
	total, _, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == pid {
			continue
		}
		if _, pp, err := procCPU(n); err == nil {
			children[pp] = append(children[pp], n)
		}
	}
	queue := append([]int(nil), children[pid]...)
	for len(queue) > 0 {
		c := queue[0]
		queue = append(queue[1:], children[c]...)
		if t, _, err := procCPU(c); err == nil {
			total += t
		}
	}
	return total, nil
}

// procCPU returns one process's user+system CPU seconds and its parent.
func procCPU(pid int) (float64, int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("bench: short /proc stat")
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, ppid, nil // USER_HZ is 100 on Linux
}

// rssKiB returns VmRSS and RssAnon of a process, in KiB.
func rssKiB(pid int) (rss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "RssAnon:":
			anon = v
		}
	}
	return rss, anon
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers (any status) or 10s pass.
func waitHTTP(url string, p *process) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("bench: %s exited: %s", p.name, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("bench: %s did not answer at %s: %s", p.name, url, p.stderr.String())
}

// startNginx runs nginx with one worker in front of origin: /cache/ with
// proxy_cache on tmpfs-like temp storage, everything else plain proxy_pass,
// both with upstream keep-alive and no access log.
func startNginx(dir, listen, origin string) (*process, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, errPeerMissing
		}
		bin = "/usr/sbin/nginx"
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "cache"), 0o755)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/logs/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache keys_zone=bench:10m;
  upstream origin { server %[2]s; keepalive 32; }
  server {
    listen %[3]s;
    location /cache/ {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      add_header X-Cache $upstream_cache_status;
    }
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, origin, listen)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("nginx", dir, bin, "-p", dir, "-c", cf)
	if err != nil {
		return nil, err
	}
	return p, waitHTTP("http://"+listen+"/", p)
}

// startVarnish runs varnishd in the foreground with a malloc store.
func startVarnish(dir, listen, origin string) (*process, error) {
	bin, err := exec.LookPath("varnishd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/varnishd"); serr != nil {
			return nil, errPeerMissing
		}
		bin = "/usr/sbin/varnishd"
	}
	host, port, _ := net.SplitHostPort(origin)
	vcl := fmt.Sprintf("vcl 4.1;\nbackend default { .host = %q; .port = %q; }\n", host, port)
	vf := filepath.Join(dir, "default.vcl")
	if err := os.WriteFile(vf, []byte(vcl), 0o644); err != nil {
		return nil, err
	}
	// -j none: no privilege drop, so varnishd can read the private temp dir.
	p, err := startProcess("varnish", dir, bin, "-F", "-j", "none", "-n", filepath.Join(dir, "varnish"), "-a", listen,
		"-f", vf, "-s", "malloc,64m", "-p", "thread_pools=1")
	if err != nil {
		return nil, err
	}
	return p, waitHTTP("http://"+listen+"/", p)
}

// startHAProxy runs haproxy in the foreground as a plain HTTP proxy.
func startHAProxy(dir, listen, origin string) (*process, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			return nil, errPeerMissing
		}
		bin = "/usr/sbin/haproxy"
	}
	conf := fmt.Sprintf(`global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind %s
  default_backend be
backend be
  http-reuse always
  server origin %s
`, listen, origin)
	cf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("haproxy", dir, bin, "-db", "-f", cf)
	if err != nil {
		return nil, err
	}
	return p, waitHTTP("http://"+listen+"/", p)
}

// startRedis runs redis-server on a Unix socket only, no persistence.
func startRedis(dir string) (*process, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errPeerMissing
	}
	sock := filepath.Join(dir, "redis.sock")
	p, err := startProcess("redis", dir, bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--bind", "127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return p, sock, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop()
	return nil, "", fmt.Errorf("bench: redis did not start: %s", p.stderr.String())
}
