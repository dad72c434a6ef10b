// Package lease elects one writer among the akminio instances of a distributed MinIO. The
// lease is one small JSON object in MinIO itself (the cluster that is already there), written
// only with S3 conditional writes through minio-go:
//
//	create     PUT If-None-Match: *       the first instance to find no lease
//	renew      PUT If-Match: <its etag>   the holder, every renew interval
//	take over  PUT If-Match: <seen etag>  a follower, once the lease it saw has expired
//	release    PUT If-Match: <its etag>   the holder on shutdown (holder emptied)
//
// A losing writer gets 412 PreconditionFailed, so of any number of instances that race for
// the same lease exactly one wins, on any node of the cluster.
//
// Expiry is judged on each instance's own clock, never by comparing clocks: the holder counts
// its lease valid until the start of its last successful renewal plus the lease duration (a
// little less: see Elector), and a follower counts a lease expired once the object has not
// changed for a whole lease duration since it first saw that version (the approach of
// Kubernetes' leader election). The expiry written in the object is the holder's clock, shown
// in /status, and never used to decide. The term grows by one on every change of holder, so
// a reader can tell a renewal from a takeover.
package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// Record is the lease object's content.
type Record struct {
	// Holder is the identity of the leader; "" once it released the lease.
	Holder string `json:"holder"`
	// Term grows by one on every change of holder (a release keeps it).
	Term uint64 `json:"term"`
	// Renewed and Expires are the holder's clock at its last write and that plus the lease
	// duration; for people (status), never compared with another clock.
	Renewed time.Time `json:"renewed"`
	Expires time.Time `json:"expires"`
	// SecretRotatedAt is the last secret rotation any leader made, carried from holder to
	// holder, so that a new leader does not take a rotation made by another for a missed one.
	SecretRotatedAt time.Time `json:"secret_rotated_at,omitzero"`
	// Nonce is random on every write. MinIO's ETag of a plain object is the MD5 of its
	// bytes, so without it two writes of equal bytes would have equal ETags, and a stale
	// If-Match would win.
	Nonce string `json:"nonce"`
}

// Errors of a Store.
var (
	// ErrNotFound: there is no lease object (yet).
	ErrNotFound = errors.New("lease: no lease object")
	// ErrConflict: a conditional write lost (412 PreconditionFailed): someone else wrote first.
	ErrConflict = errors.New("lease: someone else wrote the lease first")
)

// Store reads and conditionally writes the lease object.
type Store interface {
	// Get returns the record and its ETag, or ErrNotFound.
	Get(ctx context.Context) (Record, string, error)
	// Create writes r only if no object exists (If-None-Match: *); ErrConflict if one does.
	Create(ctx context.Context, r Record) (etag string, err error)
	// Replace writes r only if the object's ETag is still etag (If-Match); ErrConflict if not.
	Replace(ctx context.Context, r Record, etag string) (newETag string, err error)
	// Where names the object, for messages.
	Where() string
}

// S3Store is a Store on a MinIO bucket and key, through minio-go.
type S3Store struct {
	Client *minio.Client
	Bucket string
	Key    string
}

var _ Store = (*S3Store)(nil)

// Where is "bucket/key".
func (s *S3Store) Where() string { return s.Bucket + "/" + s.Key }

// Get implements Store. A missing bucket is created (see EnsureBucket), and then there is no
// lease yet.
func (s *S3Store) Get(ctx context.Context) (Record, string, error) {
	r, etag, err := s.get(ctx)
	if errors.Is(err, errNoBucket) {
		if err := s.EnsureBucket(ctx); err != nil {
			return Record{}, "", err
		}
		return Record{}, "", ErrNotFound
	}
	return r, etag, err
}

var errNoBucket = errors.New("lease: no such bucket")

func (s *S3Store) get(ctx context.Context) (Record, string, error) {
	obj, err := s.Client.GetObject(ctx, s.Bucket, s.Key, minio.GetObjectOptions{})
	if err != nil {
		return Record{}, "", s.wrap("read", err)
	}
	defer obj.Close()
	body, err := io.ReadAll(io.LimitReader(obj, 1<<16))
	if err != nil {
		return Record{}, "", s.wrap("read", err)
	}
	info, err := obj.Stat()
	if err != nil {
		return Record{}, "", s.wrap("read", err)
	}
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return Record{}, "", fmt.Errorf("lease: %s is not a lease object: %w", s.Where(), err)
	}
	return r, info.ETag, nil
}

// Create implements Store.
func (s *S3Store) Create(ctx context.Context, r Record) (string, error) {
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	return s.put(ctx, r, opts)
}

// Replace implements Store.
func (s *S3Store) Replace(ctx context.Context, r Record, etag string) (string, error) {
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	opts.SetMatchETag(etag) // If-Match: "<etag>"
	return s.put(ctx, r, opts)
}

func (s *S3Store) put(ctx context.Context, r Record, opts minio.PutObjectOptions) (string, error) {
	r.Nonce = rand.Text()
	body, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	info, err := s.Client.PutObject(ctx, s.Bucket, s.Key, bytes.NewReader(body), int64(len(body)), opts)
	if err != nil {
		return "", s.wrap("write", err)
	}
	return info.ETag, nil
}

// RotationNoter is a Store that also keeps the time of the last secret rotation in an object
// of its own, which any instance may write: a leader that lost the lease while its rotation
// was finishing (a cluster restart can outlast a lease) cannot write the lease any more, yet
// the next leader must know of the rotation, or it would rotate again in the same period.
type RotationNoter interface {
	NoteRotation(ctx context.Context, at time.Time) error
	LastRotation(ctx context.Context) (time.Time, error) // zero when none is recorded
}

var _ RotationNoter = (*S3Store)(nil)

// rotationKey is the object that records the last rotation: the lease's key + ".rotation".
func (s *S3Store) rotationKey() string { return s.Key + ".rotation" }

type rotationNote struct {
	SecretRotatedAt time.Time `json:"secret_rotated_at"`
}

// NoteRotation implements RotationNoter; an earlier time than the one recorded is kept out.
func (s *S3Store) NoteRotation(ctx context.Context, at time.Time) error {
	if last, err := s.LastRotation(ctx); err == nil && !at.After(last) {
		return nil
	}
	body, _ := json.Marshal(rotationNote{SecretRotatedAt: at.UTC()})
	_, err := s.Client.PutObject(ctx, s.Bucket, s.rotationKey(), bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		return fmt.Errorf("lease: record the rotation in %s/%s: %w", s.Bucket, s.rotationKey(), err)
	}
	return nil
}

// LastRotation implements RotationNoter.
func (s *S3Store) LastRotation(ctx context.Context) (time.Time, error) {
	obj, err := s.Client.GetObject(ctx, s.Bucket, s.rotationKey(), minio.GetObjectOptions{})
	if err != nil {
		return time.Time{}, err
	}
	defer obj.Close()
	body, err := io.ReadAll(io.LimitReader(obj, 1<<12))
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchKey" || code == "NoSuchBucket" {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	var n rotationNote
	if err := json.Unmarshal(body, &n); err != nil {
		return time.Time{}, fmt.Errorf("lease: %s/%s: %w", s.Bucket, s.rotationKey(), err)
	}
	return n.SecretRotatedAt, nil
}

// EnsureBucket creates the lease's bucket when it does not exist; another instance creating
// it at the same moment is fine.
func (s *S3Store) EnsureBucket(ctx context.Context) error {
	ok, err := s.Client.BucketExists(ctx, s.Bucket)
	if err != nil {
		return fmt.Errorf("lease: bucket %q: %w", s.Bucket, err)
	}
	if ok {
		return nil
	}
	err = s.Client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
	if resp := minio.ToErrorResponse(err); err != nil && resp.Code != "BucketAlreadyOwnedByYou" && resp.Code != "BucketAlreadyExists" {
		return fmt.Errorf("lease: create bucket %q: %w", s.Bucket, err)
	}
	return nil
}

// wrap turns MinIO's answers into ErrNotFound and ErrConflict, and names the object.
func (s *S3Store) wrap(op string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey":
		return ErrNotFound
	case resp.Code == "NoSuchBucket":
		return errNoBucket
	case resp.Code == "PreconditionFailed" || resp.StatusCode == 412:
		return ErrConflict
	}
	return fmt.Errorf("lease: %s %s: %w", op, s.Where(), err)
}
