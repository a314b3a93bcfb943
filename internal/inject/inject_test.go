package inject_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/inject"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden injects each testdata/*.in.yaml and compares with its
// .golden.yaml (regenerate with -update), then checks that the result is
// consistent with the configuration and that injecting again is a no-op.
func TestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.yaml")
	if len(ins) == 0 {
		t.Fatal("no samples")
	}
	cfg := config.Default()
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := inject.Manifests(src, inject.Options{ConfigMap: "zerohop", Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".in.yaml") + ".golden.yaml"
			if *update {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n%s", golden, got)
			}
			again, err := inject.Manifests(got, inject.Options{ConfigMap: "zerohop", Config: cfg})
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("injecting twice changed the output (err %v)", err)
			}
			for _, spec := range podSpecs(t, got) {
				for _, err := range inject.Verify(spec, cfg) {
					t.Errorf("verify: %v", err)
				}
			}
		})
	}
}

// podSpecs extracts the pod specs of the workloads in a YAML stream.
func podSpecs(t *testing.T, b []byte) []*corev1.PodSpec {
	t.Helper()
	var specs []*corev1.PodSpec
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Deployment":
			var d appsv1.Deployment
			mustStrict(t, doc, &d)
			specs = append(specs, &d.Spec.Template.Spec)
		case "Pod":
			var p corev1.Pod
			mustStrict(t, doc, &p)
			specs = append(specs, &p.Spec)
		case "CronJob":
			var c batchv1.CronJob
			mustStrict(t, doc, &c)
			specs = append(specs, &c.Spec.JobTemplate.Spec.Template.Spec)
		}
	}
	return specs
}

func mustStrict(t *testing.T, doc string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsMistakes(t *testing.T) {
	cfg := config.Default()
	base := func() *corev1.PodSpec {
		spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}}
		if err := inject.PodSpec(spec, inject.Options{Config: cfg}); err != nil {
			t.Fatal(err)
		}
		return spec
	}
	if errs := inject.Verify(base(), cfg); len(errs) != 0 {
		t.Fatalf("a fresh injection should verify: %v", errs)
	}
	for _, tt := range []struct {
		name   string
		break_ func(*corev1.PodSpec)
		want   string
	}{
		{"app mount writable", func(s *corev1.PodSpec) { s.Containers[0].VolumeMounts[0].ReadOnly = false }, "read-only"},
		{"disk emptyDir", func(s *corev1.PodSpec) { s.Volumes[0].EmptyDir.Medium = "" }, "Memory"},
		{"size too small", func(s *corev1.PodSpec) { q := s.Volumes[0].EmptyDir.SizeLimit; q.Set(int64(cfg.Cache.Size)) }, "twice"},
		{"not native", func(s *corev1.PodSpec) { s.InitContainers[0].RestartPolicy = nil }, "restartPolicy"},
		{"wrong proxy", func(s *corev1.PodSpec) { s.Containers[0].Env[0].Value = "http://127.0.0.1:1" }, "HTTP_PROXY"},
		{"wrong mount path", func(s *corev1.PodSpec) { s.InitContainers[0].VolumeMounts[0].MountPath = "/tmp" }, "cache.dir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := base()
			tt.break_(spec)
			errs := inject.Verify(spec, cfg)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("errors %v; want one mentioning %q", errs, tt.want)
			}
		})
	}
}
