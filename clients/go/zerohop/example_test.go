package zerohop_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/zerohop/zerohop/clients/go/zerohop"
	"github.com/zerohop/zerohop/shm"
)

// An app sets its http.Client's Transport; fresh hits come from the shared
// file, everything else goes to the sidecar.
func Example() {
	dir, _ := os.MkdirTemp("", "zerohop-example")
	defer os.RemoveAll(dir)

	// The sidecar's side (normally another container): store a response.
	w, _ := shm.OpenWriter(dir, &shm.Options{Size: 1 << 20, RegionSize: 64 << 10})
	defer w.Close()
	now := time.Now()
	w.Put(&shm.Item{
		Key:    shm.AppendKey(nil, "GET", "http", "catalog.internal", "/items/42"),
		Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body:     []byte(`{"id":42}`),
		StoredMs: now.UnixMilli(), ExpiresMs: now.Add(time.Minute).UnixMilli(),
	})

	// The app's side.
	c, err := zerohop.Open(dir, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	client := &http.Client{Transport: c.Transport()}
	resp, err := client.Get("http://catalog.internal/items/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body), resp.Header.Get("Age"))
	// Output: 200 {"id":42} 0
}
