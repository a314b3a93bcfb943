// Command zerohop is the zerohop sidecar: a forwarding proxy with an RFC
// 9111 cache kept in a shared memory-mapped file that the app reads
// directly. Run "zerohop help" for the commands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "zerohop:", err)
		os.Exit(1)
	}
}
