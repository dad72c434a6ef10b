// Command dashboard writes akminio's Grafana dashboard, built from Go with the Grafana
// Foundation SDK: `make dashboard` runs it to regenerate deploy/grafana/akminio.json, and a
// test fails when the committed file differs from what it generates, or when a panel
// queries a metric a running akminio does not export.
//
// It is a build tool: cmd/akminio never imports it.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("out", "deploy/grafana/akminio.json", "file to write the dashboard to (- for stdout)")
	flag.Parse()
	data, err := build(panels)
	if err == nil {
		if *out == "-" {
			_, err = os.Stdout.Write(data)
		} else {
			err = os.WriteFile(*out, data, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}
