package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

var durationType = reflect.TypeFor[time.Duration]()

// strictHook is the one decode hook: it turns duration strings into time.Duration and
// rejects every value whose YAML type does not fit the key, with a message a person can act
// on. Strings are accepted for bools and lists because environment overrides are strings
// ("true", "a,b"). It never quotes the value of a string key, which may be a secret.
func strictHook(from, to reflect.Type, data any) (any, error) {
	if data == nil {
		return data, nil
	}
	if to == durationType {
		return decodeDuration(data)
	}
	switch to.Kind() {
	case reflect.String:
		if from.Kind() != reflect.String {
			return nil, fmt.Errorf("must be a string, not %s (quote it)", describe(data))
		}
	case reflect.Bool:
		if s, ok := data.(string); ok {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("must be true or false, not %q", s)
			}
			return b, nil
		}
		if from.Kind() != reflect.Bool {
			return nil, fmt.Errorf("must be true or false, not %s", describe(data))
		}
	case reflect.Slice:
		if s, ok := data.(string); ok && to.Elem().Kind() == reflect.String {
			return splitList(s), nil
		}
		if from.Kind() != reflect.Slice {
			return nil, fmt.Errorf("must be a list, not %s", describe(data))
		}
	case reflect.Struct, reflect.Map:
		if from.Kind() != reflect.Map {
			return nil, fmt.Errorf("must be a mapping, not %s", describe(data))
		}
	}
	return data, nil
}

// decodeDuration accepts "10s"-style strings only: a bare number has no unit and would
// silently mean nanoseconds.
func decodeDuration(data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("must be a duration with a unit such as 10s or 5m, not %s", describe(data))
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not a duration (write it with a unit, such as 10s or 5m)", s)
	}
	return d, nil
}

// splitList turns an environment value "a, b" into ["a" "b"]; "" is the empty list.
func splitList(s string) []any {
	out := []any{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// describe names the YAML type of a decoded value, without its content.
func describe(v any) string {
	switch reflect.ValueOf(v).Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a mapping"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// mapIndex matches mapstructure's "policies[name]" so it can be written "policies.name".
var mapIndex = regexp.MustCompile(`^policies\[([^\]]*)\]`)

// keyPath converts a mapstructure field name into the config's key path notation.
func keyPath(name string) string {
	return mapIndex.ReplaceAllString(name, "policies.$1")
}

// addDecodeErrors walks mapstructure's joined error tree and records one problem per leaf,
// remembering the keys so validation does not report them a second time.
func addDecodeErrors(p *problems, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			addDecodeErrors(p, e)
		}
		return
	}
	de, ok := err.(*mapstructure.DecodeError)
	if !ok {
		if inner := errors.Unwrap(err); inner != nil {
			addDecodeErrors(p, inner) // a wrapper ("decoding failed ...") around the tree
		} else {
			p.add("", "%s", err.Error())
		}
		return
	}
	inner := de.Unwrap()
	if _, ok := inner.(interface{ Unwrap() []error }); ok {
		addDecodeErrors(p, inner)
		return
	}
	key := keyPath(de.Name())
	p.add(key, "%s", inner.Error())
	p.skip(key)
}

// isKnownKey reports whether path (lower-case segments) names a key of Config, for
// environment overrides. Policy names are free-form; list elements cannot be addressed.
func isKnownKey(path []string) bool {
	t := reflect.TypeFor[Config]()
	for _, seg := range path {
		switch t.Kind() {
		case reflect.Struct:
			f, ok := fieldByTag(t, seg)
			if !ok {
				return false
			}
			t = f.Type
		case reflect.Map:
			if t.Elem().Kind() == reflect.Interface {
				return true // inside a policy document: anything goes
			}
			t = t.Elem()
		default:
			return false
		}
	}
	return true
}

// fieldByTag finds the struct field whose koanf tag is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("koanf"); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
