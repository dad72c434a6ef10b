package config

import (
	"fmt"
	"io"
)

// Redacted is what a Secret prints as, wherever it ends up.
const Redacted = "[redacted]"

// Secret is a credential. It prints, formats, marshals and logs as Redacted; Reveal is the
// one way to read it, and is called only where the value goes on the wire.
type Secret string

// Reveal returns the secret's value. Call it only to hand the value to a remote API.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s != "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb (%s, %v, %q, %x, ...) prints Redacted.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, zap's reflection encoder, ...).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
