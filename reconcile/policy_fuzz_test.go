package reconcile

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
)

// FuzzNormalizePolicy: NormalizePolicy is idempotent, and order-insensitive where MinIO is
// (the order of keys and of the values of Action, NotAction, Resource, NotResource,
// Principal and Condition sets; statement order is kept, as MinIO keeps it). A document
// with the same meaning, shuffled, normalises to the same bytes and PoliciesEqual says so.
func FuzzNormalizePolicy(f *testing.F) {
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:GetObject"],"Resource":"arn:aws:s3:::shared/*"}]}`,
		`{"Statement":{"Effect":"Deny","NotAction":"s3:*","NotResource":["b","a"],"Sid":""}}`,
		`{"ID":"","Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["*"],"Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.1","192.168.0.0/16"]},"Bool":{"aws:SecureTransport":true}}}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["b","a"]},"Action":"s3:GetObject","Resource":"x","Condition":{}}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"a","Condition":{"NumericLessThan":{"s3:max-keys":[10,2,1e3]}}},{"Effect":"Allow","Action":"a","Condition":{"NumericLessThan":{"s3:max-keys":[2,10,1e3]}}}]}`,
		`{"Statement":[]}`, `[]`, `{"Statement":null}`, `{"Statement":[1]}`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		norm, err := NormalizePolicy(doc)
		if err != nil {
			return
		}
		again, err := NormalizePolicy(norm)
		if err != nil {
			t.Fatalf("the normal form %s does not normalise: %v", norm, err)
		}
		if !bytes.Equal(again, norm) {
			t.Fatalf("not idempotent:\n once: %s\ntwice: %s", norm, again)
		}
		if !PoliciesEqual(doc, norm) {
			t.Fatalf("a document is not equal to its normal form: %s vs %s", doc, norm)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(norm))
		dec.UseNumber() // numbers keep their text, as NormalizePolicy keeps it
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("normal form is not JSON: %v", err)
		}
		shuffled, err := json.Marshal(reverseSets(v))
		if err != nil {
			t.Fatal(err)
		}
		got, err := NormalizePolicy(shuffled)
		if err != nil {
			t.Fatalf("shuffled %s does not normalise: %v", shuffled, err)
		}
		if !bytes.Equal(got, norm) {
			t.Fatalf("order matters:\n   normal: %s\n shuffled: %s\nnormalised: %s", norm, shuffled, got)
		}
		if !PoliciesEqual(shuffled, doc) {
			t.Fatalf("PoliciesEqual says a shuffled document differs: %s vs %s", shuffled, doc)
		}
	})
}

// reverseSets reverses every list that MinIO treats as a set, leaving statements in order.
func reverseSets(v any) any {
	p, ok := v.(map[string]any)
	if !ok {
		return v
	}
	stmts, _ := p["Statement"].([]any)
	for _, s := range stmts {
		st, ok := s.(map[string]any)
		if !ok {
			continue
		}
		for _, k := range policySetKeys {
			reverseList(st[k])
		}
		if pr, ok := st["Principal"].(map[string]any); ok {
			for _, v := range pr {
				reverseList(v)
			}
		}
		if c, ok := st["Condition"].(map[string]any); ok {
			for _, kv := range c {
				if keys, ok := kv.(map[string]any); ok {
					for _, vals := range keys {
						reverseList(vals)
					}
				}
			}
		}
	}
	return p
}

func reverseList(v any) {
	if l, ok := v.([]any); ok {
		slices.Reverse(l)
	}
}
