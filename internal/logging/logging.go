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
	base     []config.Secret // the config's, replaced by Set
	extra    []config.Secret // added by Add, kept
	patterns []string        // every encoded form of every secret, longest first; nil: nothing to scrub
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

// rebuild lists the patterns for base and extra; s.mu is held.
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
	s.patterns = slices.Compact(patterns)
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

// Scrub returns line with every secret replaced by config.Redacted. Matches are replaced
// leftmost first, the longest pattern winning at a position, without overlaps. A match that
// starts or ends inside a JSON escape sequence (a secret of hex digits right after a control
// character that zap wrote as \u0001, say) takes the whole escape with it, so a JSON line
// stays valid JSON.
func (s *Scrubber) Scrub(line string) string {
	if s == nil {
		return line
	}
	s.mu.RLock()
	patterns := s.patterns
	s.mu.RUnlock()
	if len(patterns) == 0 {
		return line
	}
	var b strings.Builder
	done := 0 // line[:done] is written or replaced
	for pos := 0; pos < len(line); {
		start, n := -1, 0
		for _, p := range patterns {
			if i := strings.Index(line[pos:], p); i >= 0 && (start < 0 || pos+i < start) {
				start, n = pos+i, len(p)
			}
		}
		if start < 0 {
			break
		}
		end := escapeEnd(line, start+n)
		start = escapeStart(line, start)
		if start < done {
			start = done
		}
		b.WriteString(line[done:start])
		b.WriteString(config.Redacted)
		done, pos = end, end
	}
	if done == 0 {
		return line
	}
	b.WriteString(line[done:])
	return b.String()
}

// escapes reports whether line[i] is a backslash that starts an escape: it is preceded by an
// even number of backslashes.
func escapes(line string, i int) bool {
	if line[i] != '\\' {
		return false
	}
	n := 0
	for j := i - 1; j >= 0 && line[j] == '\\'; j-- {
		n++
	}
	return n%2 == 0
}

// escapeStart moves a match start k back to the start of the escape sequence it falls in
// (after the backslash of \" or inside \uXXXX), if any.
func escapeStart(line string, k int) int {
	for j := 1; j <= 5 && k-j >= 0; j++ {
		i := k - j
		if !escapes(line, i) {
			continue
		}
		if j == 1 {
			return i
		}
		if i+1 < len(line) && line[i+1] == 'u' && i+6 > k {
			return i
		}
	}
	return k
}

// escapeEnd moves a match end e forward to the end of the escape sequence it cuts, if any.
func escapeEnd(line string, e int) int {
	for j := 1; j <= 5 && e-j >= 0; j++ {
		i := e - j
		if !escapes(line, i) {
			continue
		}
		size := 2
		if i+1 < len(line) && line[i+1] == 'u' {
			size = 6
		}
		if i+size > e {
			return min(i+size, len(line))
		}
		return e
	}
	return e
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
