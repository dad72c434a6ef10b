// Package logging builds akminio's zap logger: JSON by default, console for humans, and a
// Scrubber under every encoder so that no registered secret value reaches the output,
// whichever way it was logged (a field, a formatted error, the message, a struct).
package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/akminio/akminio/config"
)

// Scrubber replaces every occurrence of a registered secret value in encoded log lines with
// config.Redacted. It is safe for concurrent use; Set swaps the config's secrets on a reload,
// Add registers secrets learnt at run time (a rotation's old and new client secret) for the
// rest of the process's life.
type Scrubber struct {
	mu       sync.RWMutex
	base     []config.Secret   // the config's, replaced by Set
	extra    []config.Secret   // added by Add, kept
	replacer *strings.Replacer // nil when there is nothing to scrub
}

// NewScrubber returns a Scrubber for secrets (empty ones are ignored).
func NewScrubber(secrets ...config.Secret) *Scrubber {
	s := &Scrubber{}
	s.Set(secrets...)
	return s
}

// Set replaces the config's secrets to scrub; secrets registered with Add stay.
func (s *Scrubber) Set(secrets ...config.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base = slices.Clone(secrets)
	s.rebuild()
}

// Add registers more secrets to scrub, on top of the config's.
func (s *Scrubber) Add(secrets ...config.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = append(s.extra, secrets...)
	s.rebuild()
}

// rebuild makes the replacer for base and extra; s.mu is held.
func (s *Scrubber) rebuild() {
	var patterns []string
	for _, sec := range slices.Concat(s.base, s.extra) {
		if sec.IsSet() {
			patterns = append(patterns, encodedForms(sec.Reveal())...)
		}
	}
	// Longest first, so a secret that contains another is replaced whole; equal strings end
	// up side by side for Compact.
	slices.SortFunc(patterns, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	patterns = slices.Compact(patterns)
	var r *strings.Replacer
	if len(patterns) > 0 {
		args := make([]string, 0, 2*len(patterns))
		for _, p := range patterns {
			args = append(args, p, config.Redacted)
		}
		r = strings.NewReplacer(args...)
	}
	s.replacer = r
}

// encodedForms lists the ways v can appear in an encoded log line: as is (a console
// message); escaped by zap's JSON encoder (a string field, which leaves < > & and U+2028
// alone); escaped by encoding/json with and without HTML escaping (zap.Any's reflection,
// a JSON response body quoted in an error); such a body escaped once more by zap (an error
// field); and URL-encoded (a query string or form body in an error).
func encodedForms(v string) []string {
	forms := []string{v, zapEscaped(v), url.QueryEscape(v)}
	for _, html := range []bool{true, false} {
		j := jsonEscaped(v, html)
		forms = append(forms, j, zapEscaped(j))
	}
	return forms
}

// zapEscaped is v as zap's JSON encoder writes it between the quotes of a string field.
func zapEscaped(v string) string {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
	buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.String("k", v)})
	if err != nil {
		return v
	}
	defer buf.Free()
	line := strings.TrimSuffix(buf.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(line, `{"k":"`), `"}`)
}

// jsonEscaped is v as encoding/json writes it between the quotes of a string.
func jsonEscaped(v string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return v
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// Scrub returns line with every secret replaced by config.Redacted.
func (s *Scrubber) Scrub(line string) string {
	if s == nil {
		return line
	}
	s.mu.RLock()
	r := s.replacer
	s.mu.RUnlock()
	if r == nil {
		return line
	}
	return r.Replace(line)
}

// scrubWriter scrubs each encoded entry (zap writes one whole entry per Write) before it
// reaches the destination.
type scrubWriter struct {
	out zapcore.WriteSyncer
	s   *Scrubber
}

func (w scrubWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.out, w.s.Scrub(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w scrubWriter) Sync() error { return w.out.Sync() }

// New builds the logger that cfg describes, writing to w. Every line passes through s (which
// may be nil only in tests that log no secret). cfg.Level is one of config.LogLevels and
// cfg.Format one of config.LogFormats.
func New(cfg config.Log, w io.Writer, s *Scrubber) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil || !slices.Contains(config.LogLevels, cfg.Level) {
		return nil, fmt.Errorf("log.level: %q is not one of %s", cfg.Level, strings.Join(config.LogLevels, ", "))
	}
	var enc zapcore.Encoder
	switch cfg.Format {
	case "json", "":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("log.format: %q is not one of %s", cfg.Format, strings.Join(config.LogFormats, ", "))
	}
	out := zapcore.AddSync(w)
	if s != nil {
		out = scrubWriter{out: out, s: s}
	}
	core := zapcore.NewCore(enc, zapcore.Lock(out), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(out))), nil
}
