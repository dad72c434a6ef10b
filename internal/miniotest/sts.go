package miniotest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Creds are temporary credentials issued by MinIO's STS.
type Creds struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
	Expiration   time.Time
}

// String hides the secret parts, so Creds can be logged.
func (c Creds) String() string {
	return fmt.Sprintf("Creds{AccessKey: %s, expires %s}", c.AccessKey, c.Expiration.Format(time.RFC3339))
}

// AssumeRoleWithWebIdentity logs in the way MinIO users of an OpenID provider do: it
// trades the ID token for temporary credentials at the STS of endpoint
// ("http://host:port"). duration 0 lets the server choose (MinIO's minimum is 15
// minutes). A refusal carries MinIO's message verbatim, e.g. "policy claim missing
// from the JWT token"; errors.As with credentials.ErrorResponse gives its code.
func AssumeRoleWithWebIdentity(ctx context.Context, endpoint, idToken string, duration time.Duration) (Creds, error) {
	token := func() (*credentials.WebIdentityToken, error) {
		return &credentials.WebIdentityToken{Token: idToken, Expiry: int(duration.Seconds())}, nil
	}
	sts, err := credentials.NewSTSWebIdentity(endpoint, token)
	if err != nil {
		return Creds{}, fmt.Errorf("sts: AssumeRoleWithWebIdentity at %s: %w", endpoint, err)
	}
	v, err := sts.GetWithContext(&credentials.CredContext{
		Client:  &http.Client{Timeout: 30 * time.Second},
		Context: ctx,
	})
	if err != nil {
		return Creds{}, fmt.Errorf("sts: AssumeRoleWithWebIdentity at %s: %w", endpoint, err)
	}
	return Creds{
		AccessKey:    v.AccessKeyID,
		SecretKey:    v.SecretAccessKey,
		SessionToken: v.SessionToken,
		Expiration:   v.Expiration,
	}, nil
}

// Access is what a set of credentials may do on a bucket.
type Access struct {
	CanRead  bool // s3:GetObject (what the built-in readonly policy grants)
	CanWrite bool // s3:PutObject
}

// Probe reports what creds may do on bucket at endpoint ("http://host:port"). The
// bucket must exist (create it with root credentials first).
//
//   - read: GetObject of a key that does not exist; MinIO checks s3:GetObject first,
//     so NoSuchKey means allowed and AccessDenied means refused;
//   - write: PutObject of a small object, removed again afterwards (if the
//     credentials may write but not delete, the object stays).
//
// Any other answer (a missing bucket, an unreachable server, expired credentials) is
// an error: it says nothing about the policy.
func Probe(ctx context.Context, endpoint string, creds Creds, bucket string) (Access, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return Access{}, fmt.Errorf("probe: endpoint %q is not a URL like http://host:port", endpoint)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(creds.AccessKey, creds.SecretKey, creds.SessionToken),
		Secure: u.Scheme == "https",
	})
	if err != nil {
		return Access{}, fmt.Errorf("probe: client for %s: %w", endpoint, err)
	}
	key := "akminio-probe/" + randomHex(8)
	var a Access
	if a.CanRead, err = probeRead(ctx, c, bucket, key); err != nil {
		return Access{}, err
	}
	if a.CanWrite, err = probeWrite(ctx, c, bucket, key); err != nil {
		return Access{}, err
	}
	return a, nil
}

func probeRead(ctx context.Context, c *minio.Client, bucket, key string) (bool, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
		obj.Close()
	}
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil, code == "NoSuchKey":
		return true, nil
	case code == "AccessDenied":
		return false, nil
	default:
		return false, fmt.Errorf("probe: read %s/%s: %w", bucket, key, err)
	}
}

func probeWrite(ctx context.Context, c *minio.Client, bucket, key string) (bool, error) {
	body := []byte("akminio access probe\n")
	_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain"})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
	case code == "AccessDenied":
		return false, nil
	default:
		return false, fmt.Errorf("probe: write %s/%s: %w", bucket, key, err)
	}
	err = c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "AccessDenied" {
		return true, fmt.Errorf("probe: remove probe object %s/%s: %w", bucket, key, err)
	}
	return true, nil
}
