package deploy_test

import (
	"os"
	"path"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/zerohop/zerohop/config"
	"github.com/zerohop/zerohop/internal/inject"
)

// TestManifestsAgreeWithConfig parses the shipped manifests with the
// Kubernetes API types and checks them against the zerohop.yaml of the
// ConfigMap: mounts, ports, paths, probes, sizes and the native-sidecar
// shape.
func TestManifestsAgreeWithConfig(t *testing.T) {
	var cm corev1.ConfigMap
	strict(t, "kubernetes/configmap.yaml", &cm)
	data, ok := cm.Data[inject.ConfigFileName]
	if !ok {
		t.Fatalf("configmap has no %s", inject.ConfigFileName)
	}
	cfg, err := config.Parse("configmap:"+inject.ConfigFileName, []byte(data))
	if err != nil {
		t.Fatalf("the shipped configuration is invalid: %v", err)
	}
	var d appsv1.Deployment
	strict(t, "kubernetes/deployment.yaml", &d)
	spec := &d.Spec.Template.Spec
	for _, err := range inject.Verify(spec, cfg) {
		t.Error(err)
	}

	// The app's proxy variables are what zerohop inject would set, in both
	// spellings (curl and wget read only the lower-case ones).
	for _, c := range spec.Containers {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		wantNoProxy := strings.Join(inject.NoProxy(cfg), ",")
		for name, want := range map[string]string{"HTTP_PROXY": "http://" + cfg.Listeners[0].Address, "http_proxy": "http://" + cfg.Listeners[0].Address,
			"NO_PROXY": wantNoProxy, "no_proxy": wantNoProxy} {
			if env[name] != want {
				t.Errorf("container %s: %s = %q; want %q", c.Name, name, env[name], want)
			}
		}
	}

	// The sidecar reads the config file where the ConfigMap is mounted.
	var sc corev1.Container
	for _, c := range spec.InitContainers {
		if c.Name == inject.ContainerName {
			sc = c
		}
	}
	want := path.Join(inject.ConfigMountPath, inject.ConfigFileName)
	if strings.Join(sc.Args, " ") != "run --config "+want {
		t.Errorf("sidecar args %q; want run --config %s", sc.Args, want)
	}
	mounted := false
	for _, m := range sc.VolumeMounts {
		mounted = mounted || (m.Name == inject.ConfigVolume && m.MountPath == inject.ConfigMountPath && m.ReadOnly)
	}
	if !mounted {
		t.Errorf("sidecar does not mount %q read-only at %s", inject.ConfigVolume, inject.ConfigMountPath)
	}
	for _, v := range spec.Volumes {
		if v.Name == inject.ConfigVolume && (v.ConfigMap == nil || v.ConfigMap.Name != cm.Name) {
			t.Errorf("volume %q does not reference ConfigMap %q", v.Name, cm.Name)
		}
	}
	if sc.SecurityContext == nil || sc.SecurityContext.ReadOnlyRootFilesystem == nil || !*sc.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("sidecar should run with a read-only root filesystem")
	}
	if _, ok := sc.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("sidecar needs a memory limit (it is charged for the tmpfs pages it touches)")
	}

	// The image's entrypoint is what the probes execute.
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), `ENTRYPOINT ["/zerohop"]`) || sc.ReadinessProbe.Exec.Command[0] != "/zerohop" {
		t.Error("Dockerfile ENTRYPOINT and the probes' command disagree")
	}
	if !strings.Contains(string(df), "CGO_ENABLED=0") {
		t.Error("the image build should be static (CGO_ENABLED=0)")
	}
}

func strict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
