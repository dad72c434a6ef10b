// Command demo is what `make demo` runs: it shows akminio working end to end on one machine.
//
// It starts a real MinIO server and the authentik simulator on loopback (internal/e2eenv)
// with demo users in a temporary folder, writes an akminio config for them, runs
// `akminio plan`, `apply` and `plan` again, then logs each demo user in to MinIO through
// STS and prints what each may do. Last it runs the daemon, `akminio run`, in the
// foreground and prints its status URL, until Ctrl-C (skip that with -run=false). Everything it started is stopped when it ends, on
// failure and on Ctrl-C or SIGTERM too, and the temporary folder is removed.
//
//	go run ./internal/cmd/demo -akminio bin/akminio -minio "$(scripts/minio.sh ensure)"
//
// Exit status: 0 when every step worked, 1 when one failed (the message names the step),
// 64 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 64
)

// options are the demo's flags.
type options struct {
	akminio string // the akminio binary
	minio   string // the MinIO server binary; "" = miniotest.BinaryPath()
	parent  string // folder to create the temporary folder in; "" = os.TempDir()
	keep    bool   // keep the temporary folder (config, logs, MinIO data) afterwards
	daemon  bool   // end with `akminio run` in the foreground until Ctrl-C
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args, runs the demo and returns the exit status. Progress goes to stdout,
// the reason for a failure to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if err := demo(ctx, o, stdout); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "\ndemo: interrupted: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "\ndemo: %v\n", err)
		}
		return exitFailure
	}
	return exitOK
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.akminio, "akminio", "bin/akminio", "the akminio binary to demonstrate")
	fs.StringVar(&o.minio, "minio", "", "the MinIO server binary (default $AKMINIO_MINIO_BIN, else the cache scripts/minio.sh fills)")
	fs.StringVar(&o.parent, "dir", "", "folder to create the demo's temporary folder in (default the system's)")
	fs.BoolVar(&o.daemon, "run", true, "end by running `akminio run` in the foreground until Ctrl-C; -run=false ends after the logins")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder (config, logs, MinIO data) when the demo ends")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: demo [flags]\n\nRun akminio against a real MinIO and the authentik simulator, then show each demo user's access.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return o, errors.New("unexpected argument")
	}
	return o, nil
}
