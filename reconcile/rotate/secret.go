package rotate

import (
	"fmt"
	"io"

	"github.com/akminio/akminio/config"
)

// SecretLength and SecretAlphabet describe a generated client secret: 128 characters of
// [A-Za-z0-9], as authentik generates them.
const (
	SecretLength   = 128
	SecretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// NewSecret draws a secret from r (crypto/rand.Reader in production). Each character is
// uniform over the alphabet: bytes at or above the largest multiple of 62 that fits in a
// byte (248) are rejected rather than reduced, which would favour the first 8 characters.
func NewSecret(r io.Reader) (config.Secret, error) {
	const n = len(SecretAlphabet)
	const limit = 256 - 256%n // 248
	out := make([]byte, 0, SecretLength)
	buf := make([]byte, SecretLength)
	for len(out) < SecretLength {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("generate secret: read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, SecretAlphabet[int(b)%n])
			if len(out) == SecretLength {
				break
			}
		}
	}
	return config.Secret(out), nil
}
