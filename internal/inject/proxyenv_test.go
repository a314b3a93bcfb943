package inject_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/inject"
)

// TestProxyEnvBothSpellings: curl and wget read only http_proxy and
// no_proxy, so an app container gets both spellings of both, the same
// values, with the pod's own and the metadata addresses in no_proxy.
func TestProxyEnvBothSpellings(t *testing.T) {
	remote := config.Default()
	remote.Admin.Address, remote.Admin.AllowRemote = "10.0.0.5:9901", true
	remote.Listeners[0].Address = "0.0.0.0:8089"
	for _, tt := range []struct {
		name    string
		cfg     *config.Config
		env     []corev1.EnvVar
		proxy   string
		noProxy string // a prefix of the value
		extra   []string
	}{
		{name: "nothing set", cfg: config.Default(), proxy: "http://127.0.0.1:8089",
			noProxy: "localhost,127.0.0.1,::1,169.254.169.254,169.254.170.2,169.254.170.23,fd00:ec2::254,fd00:ec2::23,100.100.100.200,metadata.google.internal"},
		{name: "the app's lower-case proxy wins for both", cfg: config.Default(),
			env: []corev1.EnvVar{{Name: "http_proxy", Value: "http://corp:3128"}}, proxy: "http://corp:3128", noProxy: "localhost,"},
		{name: "the app's NO_PROXY is kept and completed", cfg: config.Default(),
			env: []corev1.EnvVar{{Name: "NO_PROXY", Value: "internal.example.com, LOCALHOST"}}, proxy: "http://127.0.0.1:8089",
			noProxy: "internal.example.com,LOCALHOST,127.0.0.1,::1,169.254.169.254"},
		{name: "the app's no_proxy too", cfg: config.Default(),
			env: []corev1.EnvVar{{Name: "no_proxy", Value: ".svc"}}, proxy: "http://127.0.0.1:8089", noProxy: ".svc,localhost,"},
		{name: "remote admin, listener on every address", cfg: remote, proxy: "http://127.0.0.1:8089",
			noProxy: "localhost,127.0.0.1,::1,10.0.0.5,169.254.169.254"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x", Env: tt.env}}}
			if err := inject.PodSpec(spec, inject.Options{Config: tt.cfg}); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, e := range spec.Containers[0].Env {
				if _, dup := env[e.Name]; dup {
					t.Errorf("%s set twice", e.Name)
				}
				env[e.Name] = e.Value
			}
			if env["HTTP_PROXY"] != tt.proxy || env["http_proxy"] != tt.proxy {
				t.Errorf("HTTP_PROXY %q, http_proxy %q; want both %q", env["HTTP_PROXY"], env["http_proxy"], tt.proxy)
			}
			if env["NO_PROXY"] != env["no_proxy"] || !strings.HasPrefix(env["NO_PROXY"], tt.noProxy) {
				t.Errorf("NO_PROXY %q, no_proxy %q; want both to start %q", env["NO_PROXY"], env["no_proxy"], tt.noProxy)
			}
			if tt.proxy == "http://127.0.0.1:8089" {
				if errs := inject.Verify(spec, tt.cfg); len(errs) != 0 {
					t.Errorf("verify: %v", errs)
				}
			}
		})
	}
}

func TestVerifyProxyEnv(t *testing.T) {
	cfg := config.Default()
	for _, tt := range []struct {
		name string
		edit func(env []corev1.EnvVar) []corev1.EnvVar
		want string
	}{
		{"only HTTP_PROXY (the old manifests)", func(env []corev1.EnvVar) []corev1.EnvVar {
			return drop(env, "http_proxy")
		}, "sets no http_proxy"},
		{"only NO_PROXY", func(env []corev1.EnvVar) []corev1.EnvVar { return drop(env, "no_proxy") }, "sets no no_proxy"},
		{"NO_PROXY without ::1", func(env []corev1.EnvVar) []corev1.EnvVar {
			for i := range env {
				if env[i].Name == "NO_PROXY" {
					env[i].Value = "127.0.0.1,localhost"
				}
			}
			return env
		}, `NO_PROXY "127.0.0.1,localhost" lacks ::1`},
		{"lower-case proxy elsewhere", func(env []corev1.EnvVar) []corev1.EnvVar {
			for i := range env {
				if env[i].Name == "http_proxy" {
					env[i].Value = "http://127.0.0.1:1"
				}
			}
			return env
		}, "http_proxy \"http://127.0.0.1:1\" is not the listener"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}}
			if err := inject.PodSpec(spec, inject.Options{Config: cfg}); err != nil {
				t.Fatal(err)
			}
			spec.Containers[0].Env = tt.edit(spec.Containers[0].Env)
			errs := inject.Verify(spec, cfg)
			found := false
			for _, err := range errs {
				found = found || strings.Contains(err.Error(), tt.want)
			}
			if !found {
				t.Errorf("errors %v; want one with %q", errs, tt.want)
			}
		})
	}
}

func drop(env []corev1.EnvVar, name string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range env {
		if e.Name != name {
			out = append(out, e)
		}
	}
	return out
}
