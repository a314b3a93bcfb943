package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// keyLine is a key file line: consumer:salt:hex(sha256(salt || key)).
func keyLine(consumer, salt, key string) string {
	sum := sha256.Sum256([]byte(salt + key))
	return consumer + ":" + salt + ":" + hex.EncodeToString(sum[:])
}

// secretVolume is a directory laid out as Kubernetes mounts a Secret:
// name -> ..data/name, ..data -> ..<timestamp>; an update writes a new
// timestamped directory and renames a new ..data symlink over the old.
type secretVolume struct {
	dir string
	n   int
}

func (v *secretVolume) write(t *testing.T, name, content string) {
	t.Helper()
	v.n++
	ts := fmt.Sprintf("..2026_12_07_00_00_%02d", v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(v.dir, name)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAPIKeyAuthBinary runs the real binary with a route behind an API
// key read from a Secret-style volume: a valid key passes and fills the
// cache; without a key, or with a wrong one, the answer is 401 and the
// origin is not asked, although the response is cached; swapping the
// Secret rotates the keys without a restart; a broken file keeps the old
// keys and is counted.
func TestAPIKeyAuthBinary(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=300")
		io.WriteString(w, "secret data")
	}))
	defer origin.Close()
	vol := &secretVolume{dir: t.TempDir()}
	oldKey, newKey := "zh_old_5f0c3b0e8f2a4d7c9b1e6a3d", "zh_new_0a9d8c7b6e5f4a3b2c1d0e9f"
	vol.write(t, "keys", "# consumers\n"+keyLine("billing", "pod-salt", oldKey)+"\n")
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: o
    endpoints: [{url: %q}]
auth:
  - name: keys
    api_key: {file: %q, header: X-Api-Key, strip_credential: true}
routes:
  - {name: all, cluster: o, auth: [keys]}
`, origin.URL, filepath.Join(vol.dir, "keys"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	get := func(key string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+d.listen+"/report", nil)
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("WWW-Authenticate")
	}
	if code, body, _ := get(oldKey); code != 200 || body != "secret data" {
		t.Fatalf("valid key: %d %q", code, body)
	}
	if code, _, _ := get(oldKey); code != 200 || hits.Load() != 1 {
		t.Fatalf("valid key again: %d, origin hits %d; want a hit", code, hits.Load())
	}
	for _, key := range []string{"", "zh_guess_000000000000000000000"} {
		code, body, challenge := get(key)
		if code != 401 || strings.Contains(body, "secret") || !strings.HasPrefix(challenge, "ApiKey realm=") {
			t.Errorf("key %q: %d %q %q; want 401 with an ApiKey challenge", key, code, body, challenge)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("refused requests reached the origin: %d hits", hits.Load())
	}

	// Rotation: the Secret is swapped under the running sidecar.
	vol.write(t, "keys", keyLine("billing", "pod-salt", newKey)+"\n")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _, _ := get(newKey); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new key was not accepted after the swap\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, _ := get(oldKey); code != 401 {
		t.Errorf("the old key after rotation: %d; want 401", code)
	}
	// A broken version keeps the keys in use.
	vol.write(t, "keys", "billing:no-hash-here\n")
	deadline = time.Now().Add(15 * time.Second)
	for d.metric(t, `zerohop_auth_reloads_total{authenticator="keys",result="error"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the broken key file was not counted\n%s", d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, _ := get(newKey); code != 200 {
		t.Errorf("after a broken file: %d; want the keys in use kept", code)
	}
	if strings.Contains(d.stderr.String(), newKey) || strings.Contains(d.stderr.String(), oldKey) {
		t.Error("a key appears in the sidecar's log")
	}
}

// TestJWTAuthBinary: the real binary with a jwt authenticator whose keys
// come from a JWKS URL on loopback: a valid token passes, an expired one,
// an HS256 token made with the RSA public key as secret, and no token are
// answered 401 with a Bearer challenge, and the origin sees only the
// valid request (without the token: strip_credential).
func TestJWTAuthBinary(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": "AQAB"}}})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(set) }))
	defer idp.Close()
	var hits atomic.Int64
	var sawAuth atomic.Bool
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		sawAuth.Store(r.Header.Get("Authorization") != "")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	cfg := filepath.Join(t.TempDir(), "zerohop.yaml")
	yaml := fmt.Sprintf(`listeners:
  - {name: app, mode: reverse}
clusters:
  - name: o
    endpoints: [{url: %q}]
auth:
  - name: users
    jwt: {jwks_url: %q, issuer: "https://idp", audiences: [api], strip_credential: true}
routes:
  - {name: all, cluster: o, auth: [users]}
`, origin.URL, idp.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "ZEROHOP_CONFIG="+cfg)
	sign := func(m jwt.SigningMethod, k any, exp time.Time) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": "dave", "iss": "https://idp", "aud": "api", "exp": exp.Unix()})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"valid", sign(jwt.SigningMethodRS256, key, time.Now().Add(time.Hour)), 200},
		{"expired", sign(jwt.SigningMethodRS256, key, time.Now().Add(-time.Hour)), 401},
		{"key confusion", sign(jwt.SigningMethodHS256, pubPEM, time.Now().Add(time.Hour)), 401},
		{"none", "", 401},
	} {
		req, _ := http.NewRequest("GET", "http://"+d.listen+"/x", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d; want %d\n%s", tt.name, resp.StatusCode, tt.want, d.stderr)
		}
		if tt.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="zerohop"`) {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if hits.Load() != 1 || sawAuth.Load() {
		t.Errorf("origin: %d requests, saw Authorization %v; want 1, without it", hits.Load(), sawAuth.Load())
	}
}
