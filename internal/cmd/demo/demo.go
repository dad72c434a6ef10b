package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/akminio/akminio/internal/e2eenv"
)

// stepError says which step of the demo failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return fmt.Sprintf("step %q failed: %v", e.step, e.err) }
func (e *stepError) Unwrap() error { return e.err }

// failed wraps err as the failure of step.
func failed(step string, err error) error { return &stepError{step: step, err: err} }

// session is one demo run: where it prints, its folder and the environment it started.
type session struct {
	out     io.Writer
	akminio string // absolute path of the akminio binary
	dir     string // the temporary folder
	logPath string // akminio's logs (stderr of plan and apply), kept out of the console
	listen  string // http.listen of the config
	env     *e2eenv.Env
}

// demo runs every step in order and stops at the first failure. Whatever it started is
// stopped and its folder removed before it returns, whether it succeeded or not.
func demo(ctx context.Context, o options, out io.Writer) (err error) {
	bin, err := checkBinary(o.akminio)
	if err != nil {
		return failed("find akminio", err)
	}
	dir, err := os.MkdirTemp(o.parent, "akminio-demo-")
	if err != nil {
		return failed("create the demo folder", err)
	}
	defer func() {
		if err != nil && !o.keep {
			fmt.Fprintf(out, "\nThe demo folder %s (config, logs) is removed; keep it with -keep (make demo DEMO_ARGS=-keep).\n", dir)
		}
		err = errors.Join(err, removeDir(out, dir, o.keep))
	}()

	s := &session{out: out, akminio: bin, dir: dir, logPath: filepath.Join(dir, "akminio.log")}
	if err := s.setup(ctx, o.minio); err != nil {
		return err
	}
	defer func() {
		s.heading("Stopping MinIO and the authentik simulator")
		if cerr := s.env.Close(); cerr != nil {
			err = errors.Join(err, failed("stop", cerr))
		}
	}()
	steps := []func(context.Context) error{s.showConfig, s.reconcile, s.logins}
	if o.daemon {
		steps = append(steps, s.daemon)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// checkBinary returns the absolute path of the akminio binary, or why it cannot be run.
func checkBinary(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%w (build it with `make build`)", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// removeDir removes the demo folder unless keep is set.
func removeDir(out io.Writer, dir string, keep bool) error {
	if keep {
		fmt.Fprintf(out, "\nKept the demo folder: %s\n", dir)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return failed("remove the demo folder", err)
	}
	return nil
}

// setup starts MinIO and the simulator with the demo users and prints where they listen.
func (s *session) setup(ctx context.Context, minioBin string) error {
	s.heading("Starting MinIO and the authentik simulator")
	setupLog, err := os.Create(filepath.Join(s.dir, "setup.log"))
	if err != nil {
		return failed("setup", err)
	}
	defer setupLog.Close()
	env, err := e2eenv.Setup(ctx, e2eenv.Options{
		Dir:      s.dir,
		MinIOBin: minioBin,
		Logf:     func(format string, args ...any) { fmt.Fprintf(setupLog, format+"\n", args...) },
	})
	if err != nil {
		return failed("setup", err)
	}
	s.env = env
	s.printf("  MinIO S3 API          %s\n", env.MinIO.Endpoint)
	s.printf("  MinIO console         http://%s\n", env.MinIO.ConsoleHost)
	s.printf("  authentik simulator   %s\n", env.AK.URL())
	s.printf("  demo users            alice in %q, bob in %q, carol in no group,\n", e2eenv.GroupAdmins, e2eenv.GroupUsers)
	s.printf("                        dave in %q (a child group of %q)\n", e2eenv.GroupInterns, e2eenv.GroupUsers)
	s.printf("  demo folder           %s\n", s.dir)
	return nil
}

// showConfig writes the demo config with console logs and prints it.
func (s *session) showConfig(context.Context) error {
	cfg := s.env.DefaultConfig()
	cfg["log"] = map[string]any{"level": "info", "format": "console"}
	if h, ok := cfg["http"].(map[string]any); ok {
		s.listen, _ = h["listen"].(string)
	}
	if s.listen == "" {
		return failed("write the config", errors.New("the environment's config has no http.listen"))
	}
	if err := s.env.WriteConfig(cfg); err != nil {
		return failed("write the config", err)
	}
	text, err := os.ReadFile(s.env.ConfigPath)
	if err != nil {
		return failed("write the config", err)
	}
	s.heading("The config akminio is given: " + s.env.ConfigPath)
	s.printf("%s", indent(string(text)))
	s.printf("  (secrets are in files under %s, mode 0600)\n", filepath.Join(s.dir, "secrets"))
	return nil
}

// heading prints a section title.
func (s *session) heading(title string) { fmt.Fprintf(s.out, "\n== %s\n", title) }

// printf prints to the demo's output.
func (s *session) printf(format string, args ...any) { fmt.Fprintf(s.out, format, args...) }

// indent prefixes every line of text with two spaces and ends it with a newline.
func indent(text string) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(text, "\n", "\n  ") + "\n"
}
