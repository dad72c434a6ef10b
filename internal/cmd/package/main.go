// Command package builds akminio's Debian package with nfpm (as a library) from
// deploy/debian/nfpm.yaml: `make package` runs it after building the static binary.
//
//	go run ./internal/cmd/package -version "$(git describe --tags --always --dirty)" \
//	    -commit "$(git rev-parse HEAD)" -binary dist/build/akminio -arch amd64 -out dist
//
// It prints the path of the .deb it wrote (dist/akminio_<version>_<arch>.deb).
//
// The program is a build tool: cmd/akminio never imports it, so nfpm stays out of the
// daemon's binary.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.Version, "version", "", "version as `git describe --tags --always --dirty` prints it (required)")
	flag.StringVar(&o.Commit, "commit", "unknown", "commit the binary was built from, for the changelog")
	flag.StringVar(&o.Binary, "binary", "", "the static akminio binary to package (required)")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "Go architecture the binary was built for")
	flag.StringVar(&o.Out, "out", "dist", "folder the .deb is written to")
	flag.StringVar(&o.Root, "root", ".", "the repository root (deploy/debian/nfpm.yaml's paths are relative to it)")
	date := flag.String("date", os.Getenv("SOURCE_DATE_EPOCH"), "build date in Unix seconds, for file times and the changelog (default: now)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	}
	o.Date = time.Now().UTC()
	if *date != "" {
		sec, err := strconv.ParseInt(*date, 10, 64)
		if err != nil {
			fail(fmt.Errorf("-date %q: not Unix seconds", *date))
		}
		o.Date = time.Unix(sec, 0).UTC()
	}
	path, err := build(o)
	if err != nil {
		fail(err)
	}
	fmt.Println(path)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "package:", err)
	os.Exit(1)
}
