package reconcile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/minio/pkg/v3/policy"
)

const customPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
      "Resource": ["arn:aws:s3:::shared/${jwt:preferred_username}/*"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:ListBucket"],
      "Resource": ["arn:aws:s3:::shared"],
      "Condition": {"StringLike": {"s3:prefix": ["${jwt:preferred_username}/*"]}}
    }
  ]
}`

func TestPoliciesEqual(t *testing.T) {
	base := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}]}`
	tests := []struct {
		name  string
		a, b  string
		equal bool
	}{
		{"same bytes", base, base, true},
		{"whitespace and key order", base, `{
			"Statement": [ { "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
			"Action": ["s3:GetObject", "s3:ListBucket"], "Effect": "Allow" } ],
			"Version": "2012-10-17" }`, true},
		{"single statement object", base, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}}`, true},
		{"action and resource order", base, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::reports/*","arn:aws:s3:::reports"]}]}`, true},
		{"string vs one-element list",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::r/*"}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::r/*"]}]}`, true},
		{"condition value string vs list",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::r","Condition":{"StringLike":{"s3:prefix":"a/*"}}}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::r","Condition":{"StringLike":{"s3:prefix":["a/*"]}}}]}`, true},
		{"bool condition as MinIO stores it",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::r/*","Condition":{"Bool":{"aws:SecureTransport":false}}}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["s3:*"],"Resource":["arn:aws:s3:::r/*"],"Condition":{"Bool":{"aws:SecureTransport":["false"]}}}]}`, true},
		{"ip without prefix",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::r/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.1"}}}]}`,
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::r/*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.1/32"]}}}]}`, true},
		{"empty Sid dropped", base, `{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}]}`, true},
		{"duplicate statement dropped", base, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]},{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}]}`, true},
		{"missing version equals empty", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::r"}]}`, `{"Version":"","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::r"}]}`, true},
		{"action added", base, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:PutObject"],"Resource":["arn:aws:s3:::reports","arn:aws:s3:::reports/*"]}]}`, false},
		{"effect changed", base, strings.Replace(base, "Allow", "Deny", 1), false},
		{"resource changed", base, strings.Replace(base, "reports/*", "reports/x/*", 1), false},
		{"version changed", base, strings.Replace(base, "2012-10-17", "", 1), false},
		{"statement order", customPolicy, `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::shared"],"Condition":{"StringLike":{"s3:prefix":["${jwt:preferred_username}/*"]}}},
			{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::shared/${jwt:preferred_username}/*"]}]}`, false},
		{"condition value changed", customPolicy, strings.Replace(customPolicy, `["${jwt:preferred_username}/*"]`, `["other/*"]`, 1), false},
		{"unparsable vs valid", `{`, base, false},
		{"unparsable same bytes", `{`, `{`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PoliciesEqual([]byte(tt.a), []byte(tt.b)); got != tt.equal {
				t.Errorf("PoliciesEqual = %v, want %v\na: %s\nb: %s", got, tt.equal, tt.a, tt.b)
			}
			if got := PoliciesEqual([]byte(tt.b), []byte(tt.a)); got != tt.equal {
				t.Errorf("PoliciesEqual (swapped) = %v, want %v", got, tt.equal)
			}
		})
	}
}

func TestNormalizePolicyForm(t *testing.T) {
	got, err := NormalizePolicy([]byte(`{ "Version": "2012-10-17", "Statement": { "Sid": "", "Effect": "Allow",
		"Action": ["s3:PutObject", "s3:GetObject", "s3:GetObject"], "Resource": "arn:aws:s3:::b/<x>&" } }`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Statement":[{"Action":["s3:GetObject","s3:PutObject"],"Effect":"Allow","Resource":["arn:aws:s3:::b/<x>&"]}],"Version":"2012-10-17"}`
	if string(got) != want {
		t.Errorf("NormalizePolicy =\n%s\nwant\n%s", got, want)
	}
	again, err := NormalizePolicy(got)
	if err != nil || string(again) != string(got) {
		t.Errorf("NormalizePolicy is not idempotent: %s (%v)", again, err)
	}
}

func TestNormalizePolicyErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not JSON", `{"Version":`, "not valid JSON"},
		{"trailing data", `{"Statement":[]} {}`, "data after"},
		{"array", `[]`, "not a JSON object"},
		{"no statement", `{"Version":"2012-10-17"}`, "no Statement"},
		{"statement string", `{"Statement":"x"}`, "neither a list nor an object"},
		{"statement item", `{"Statement":["x"]}`, "Statement[0]: statement is not a JSON object"},
		{"action number", `{"Statement":[{"Effect":"Allow","Action":[1]}]}`, "Statement[0]: Action holds 1"},
		{"resource object", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":{}}]}`, "Resource is neither"},
		{"condition value", `{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringLike":{"k":{}}}}]}`, `Condition "StringLike" key "k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NormalizePolicy([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NormalizePolicy(%s) error = %v, want it to contain %q", tt.doc, err, tt.want)
			}
		})
	}
}

// TestNormalizedPolicyRoundTripsThroughMinIO checks the two promises against MinIO's own
// policy package: a normalised document parses as MinIO parses AddCannedPolicy's body, and
// what MinIO writes back (sets in random order) is equal to it.
func TestNormalizedPolicyRoundTripsThroughMinIO(t *testing.T) {
	docs := []string{
		customPolicy,
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/*"}}`,
		`{"Version":"2012-10-17","Statement":[{"Sid":"deny-plain","Effect":"Deny","Action":["s3:*"],"Resource":["arn:aws:s3:::a/*","arn:aws:s3:::b/*","arn:aws:s3:::c/*"],
		  "Condition":{"Bool":{"aws:SecureTransport":false},"IpAddress":{"aws:SourceIp":["10.0.0.1","192.168.0.0/16"]}}}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:ServerInfo","admin:ConfigUpdate"]}]}`,
	}
	for i, doc := range docs {
		norm, err := NormalizePolicy([]byte(doc))
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		p, err := policy.ParseConfig(strings.NewReader(string(norm)))
		if err != nil {
			t.Fatalf("doc %d: MinIO rejects the normalised document %s: %v", i, norm, err)
		}
		for range 5 { // MinIO marshals sets in map order: try several
			back, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("doc %d: marshal as MinIO: %v", i, err)
			}
			if !PoliciesEqual(norm, back) || !PoliciesEqual([]byte(doc), back) {
				t.Fatalf("doc %d: MinIO's form is reported as drift\nnormalised: %s\nMinIO:      %s", i, norm, back)
			}
		}
	}
}
