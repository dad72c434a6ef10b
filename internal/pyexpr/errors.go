package pyexpr

import (
	"errors"
	"fmt"
)

// Kinds of *Error; test with errors.Is(err, pyexpr.ErrSyntax) and so on.
var (
	// ErrSyntax: the expression does not compile (authentik answers 400 on save).
	ErrSyntax = errors.New("expression does not compile")
	// ErrRuntime: the expression raised (authentik logs property_mapping_exception and
	// skips the mapping).
	ErrRuntime = errors.New("expression raised an exception")
	// ErrResult: the expression returned a value JSON cannot hold (a set, an object, NaN).
	ErrResult = errors.New("expression result is not JSON-serialisable")
)

// Error is an expression that failed, as python3 reported it.
type Error struct {
	Kind    string `json:"kind"`    // "syntax", "runtime" or "result"
	Type    string `json:"type"`    // Python exception type, e.g. "NameError"
	Message string `json:"message"` // Python's message; for syntax errors its line numbers count the wrapper's "def handler" line, as authentik's do
	Line    int    `json:"line"`    // 1-based line in the expression itself; 0 when unknown
}

// Error formats a syntax error exactly as authentik's validation does (the text of its 400
// body), and other failures with the exception type and the expression's line.
func (e *Error) Error() string {
	switch e.Kind {
	case "syntax":
		return "Expression Syntax Error: " + e.Message
	case "result":
		return fmt.Sprintf("expression result: %s: %s", e.Type, e.Message)
	}
	if e.Line > 0 {
		return fmt.Sprintf("expression line %d: %s: %s", e.Line, e.Type, e.Message)
	}
	return fmt.Sprintf("expression: %s: %s", e.Type, e.Message)
}

// Unwrap returns the sentinel for the error's kind.
func (e *Error) Unwrap() error {
	switch e.Kind {
	case "syntax":
		return ErrSyntax
	case "result":
		return ErrResult
	}
	return ErrRuntime
}
