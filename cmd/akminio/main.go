// Command akminio keeps an authentik identity provider and a MinIO server consistent.
//
// main only wires: it hands the process's arguments, streams and environment to run, which
// picks a subcommand from the table below and returns the exit status.
//
// Adding a subcommand: create cmd/akminio/<name>.go with its row, and add it to commands()
// below:
//
//	// planCommand is the `plan` command.
//	func planCommand() command {
//		return command{
//			name:    "plan",
//			usage:   "[--output text|json]",
//			summary: "observe both sides, print the plan, change nothing",
//			setup: func(fs *flag.FlagSet) runFunc {
//				output := fs.String("output", "text", "text or json")
//				return func(ctx context.Context, s *session) int {
//					cfg, code := s.loadConfig(true) // true: the command needs the secrets
//					if cfg == nil {
//						return code // 78, problems already printed
//					}
//					...
//				}
//			},
//		}
//	}
//
// --config is defined for every command by run; s.loadConfig reads the file it names
// (or $AKMINIO_CONFIG, or /etc/akminio/config.yaml), prints warnings and problems to stderr,
// and returns exitConfig (78) for an invalid config.
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

	"github.com/akminio/akminio/config"
	"github.com/akminio/akminio/internal/logging"
)

// Exit statuses shared by every command. Commands add their own meanings for 1 and 2 (see
// the spec's command table).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 64 // EX_USAGE: unknown command or bad flags
	exitConfig  = 78 // EX_CONFIG: the config cannot be loaded or is invalid
)

// runFunc runs a command whose flags have been parsed.
type runFunc func(ctx context.Context, s *session) int

// command is one row of the subcommand table.
type command struct {
	name    string
	usage   string // flags besides --config, for the usage text
	summary string // one line
	// setup defines the command's own flags on fs and returns the function that runs it.
	setup func(fs *flag.FlagSet) runFunc
}

// commands is the subcommand table, in the order `akminio help` lists them. Each
// command's file defines its row.
func commands() []command {
	return []command{
		applyCommand(),
		checkConfigCommand(),
		healthcheckCommand(),
		importCommand(),
		planCommand(),
		rotateSecretCommand(),
		runCommand(),
		versionCommand(),
	}
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ()))
}

// run executes the command line args (without the program name) and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	}
	cmd, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "akminio: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return exitUsage
	}
	fs := flag.NewFlagSet("akminio "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFlag := fs.String("config", "", "config file (default $"+config.EnvConfig+", else "+config.DefaultPath+")")
	runCmd := cmd.setup(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: akminio %s [--config FILE] %s\n\n%s\n\n", cmd.name, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "akminio %s: unexpected argument %q\n", cmd.name, fs.Arg(0))
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &session{
		stdin:      stdin,
		stdout:     stdout,
		stderr:     stderr,
		environ:    environ,
		configPath: config.ResolvePath(*configFlag, environ),
		scrubber:   logging.NewScrubber(),

		rotationHooks: rotationTestHooks(),
	}
	return runCmd(ctx, s)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: akminio COMMAND [--config FILE] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'akminio COMMAND --help' for a command's flags.")
	fmt.Fprintf(w, "Exit status 78 means the config is invalid; each problem is printed on its own line.\n")
}
