package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

// options is what one package build needs.
type options struct {
	Version string    // git describe output, e.g. v1.2.0-3-gabcdef0 or abcdef0-dirty
	Commit  string    // for the changelog entry
	Binary  string    // the static akminio binary
	Arch    string    // GOARCH of the binary
	Out     string    // folder for the .deb
	Root    string    // repository root
	Date    time.Time // file times and the changelog date
}

// Maintainer is the package's Maintainer field and the changelog's signature; it must match
// deploy/debian/nfpm.yaml.
const maintainer = "The akminio authors <akminio@users.noreply.github.com>"

// configHeader starts /etc/akminio/config.yaml: the example, made inert by "unedited: true"
// (config.Load refuses it with the first-run message until the line is deleted).
const configHeader = `# /etc/akminio/config.yaml, installed by the akminio package from the example config.
# akminio refuses this file (check-config and run exit 78 with the first-run message) until
# you delete the "unedited: true" line below. First describe your hosts in it: authentik.url,
# the provider's redirect_uris, minio.endpoint, the policies and the bindings; put the secrets
# in /etc/akminio/credentials (see /usr/share/doc/akminio/README.credentials.md); then check
# it with "akminio check-config --config /etc/akminio/config.yaml --online" and start the
# service with "systemctl start akminio".
unedited: true

`

// build writes the .deb into o.Out and returns its path.
func build(o options) (string, error) {
	if o.Version == "" || o.Binary == "" {
		return "", errors.New("-version and -binary are required")
	}
	debVer, err := debVersion(o.Version)
	if err != nil {
		return "", err
	}
	debArch, err := debArch(o.Arch)
	if err != nil {
		return "", err
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return "", err
	}
	binary, err := filepath.Abs(o.Binary)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(o.Out, ".stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if stage, err = filepath.Abs(stage); err != nil {
		return "", err
	}
	if err := writeStage(stage, root, debVer, o); err != nil {
		return "", err
	}

	vars := map[string]string{
		"AKMINIO_VERSION": debVer,
		"AKMINIO_ARCH":    debArch,
		"AKMINIO_BINARY":  binary,
		"AKMINIO_STAGE":   stage,
	}
	cfgPath := filepath.Join(root, "deploy/debian/nfpm.yaml")
	var unknown []string
	cfg, err := nfpm.ParseFileWithEnvMapping(cfgPath, func(name string) string {
		v, ok := vars[name]
		if !ok && !strings.HasPrefix(name, "NFPM_") { // nfpm asks for signing passphrases: none

			unknown = append(unknown, "${"+name+"}")
		}
		return v
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", cfgPath, err)
	}
	if len(unknown) > 0 {
		return "", fmt.Errorf("%s: %s: not set by the package program", cfgPath, strings.Join(unknown, ", "))
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info.MTime = o.Date
	for _, c := range info.Contents {
		if c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(root, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(root, *s)
		}
	}
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("%s: %w", cfgPath, err)
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	out := filepath.Join(o.Out, pkg.ConventionalFileName(info))
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("deb: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return out, nil
}

// writeStage generates the files nfpm.yaml takes from ${AKMINIO_STAGE}.
func writeStage(stage, root, debVer string, o options) error {
	example, err := os.ReadFile(filepath.Join(root, "testdata/example-config.yaml"))
	if err != nil {
		return err
	}
	license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		return err
	}
	changelog, err := gzipMax(fmt.Sprintf("akminio (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n",
		debVer, o.Commit, maintainer, o.Date.Format(time.RFC1123Z)))
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"config.yaml":  append([]byte(configHeader), example...),
		"copyright":    []byte(copyright(string(license))),
		"changelog.gz": changelog,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(stage, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyright is /usr/share/doc/akminio/copyright in Debian's machine-readable format, with
// the licence text in full (the AGPL is not among /usr/share/common-licenses).
func copyright(license string) string {
	var b strings.Builder
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n" +
		"Upstream-Name: akminio\nSource: https://github.com/akminio/akminio\n\n" +
		"Files: *\nCopyright: 2026 The akminio authors\nLicense: AGPL-3.0+\n\n" +
		"License: AGPL-3.0+\n")
	for _, line := range strings.Split(strings.TrimRight(license, "\n"), "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			b.WriteString(" .\n")
		} else {
			b.WriteString(" " + line + "\n")
		}
	}
	return b.String()
}

// gzipMax compresses s as `gzip -9n` does: best compression, no name, no time stamp.
func gzipMax(s string) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(s)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	releaseRE    = regexp.MustCompile(`^v?([0-9]+(\.[0-9]+)+)(-(.*))?$`)
	notDebianVer = regexp.MustCompile(`[^A-Za-z0-9.+~]+`)
)

// debVersion makes a Debian version of a git describe output: a tag's version as it is,
// with what follows it after "+" (v1.2.0-3-gabcdef0 -> 1.2.0+3.gabcdef0, so later commits
// sort higher), and an untagged commit as 0.0.0+git.<describe>.
func debVersion(describe string) (string, error) {
	describe = strings.TrimSpace(describe)
	if describe == "" {
		return "", errors.New("empty version")
	}
	if m := releaseRE.FindStringSubmatch(describe); m != nil {
		v := m[1]
		if m[4] != "" {
			v += "+" + strings.Trim(notDebianVer.ReplaceAllString(m[4], "."), ".")
		}
		return v, nil
	}
	return "0.0.0+git." + strings.Trim(notDebianVer.ReplaceAllString(describe, "."), "."), nil
}

// debArch is Debian's name for a Go architecture.
func debArch(goarch string) (string, error) {
	arch, ok := map[string]string{
		"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf",
		"ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el",
	}[goarch]
	if !ok {
		return "", fmt.Errorf("no Debian architecture for GOARCH %q", goarch)
	}
	return arch, nil
}
