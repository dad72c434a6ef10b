package reconcile

import "errors"

// Errors come in two classes, as controller-runtime's TerminalError and external-dns'
// SoftError draw the line:
//
//	class      the same run later ...                     examples
//	transient  may well succeed with nobody doing a thing  run lock held by another run, MinIO not
//	                                                       ready after a restart, HTTP 429/5xx after
//	                                                       retries, the write gate refusing a step
//	terminal   fails again until someone changes something config refused, permission denied,
//	                                                       object invalid
//
// An error is terminal unless marked with Transient. The daemon counts a transient failure
// under its own result and alerts only when it repeats; a terminal one alerts at once.

// Transient marks err as transient; nil stays nil. errors.Is and errors.As see through it.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err: err}
}

// IsTransient reports whether err is transient: the first error in its chain that knows
// its class (see Transient, and ObserveError, which is transient only when every part that
// failed is) decides; an error that nothing marks is terminal.
func IsTransient(err error) bool {
	var c interface{ Transient() bool }
	return errors.As(err, &c) && c.Transient()
}

// transientError is an error marked transient.
type transientError struct{ err error }

func (e *transientError) Error() string   { return e.err.Error() }
func (e *transientError) Unwrap() error   { return e.err }
func (e *transientError) Transient() bool { return true }
