package config

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// RequireStateDir fails with an *Error when state_dir exists but could let someone else
// steer akminio: not a directory, not owned by the process's user, or writable by group or
// others. Anyone who can write there can plant a rotation intent (a secret of their choosing
// set on both sides at the next start) or an ownership registry (what akminio deletes). A
// state_dir that does not exist yet is fine: akminio creates it, mode 0700, on its first
// write. The commands that keep state there (plan, apply, run, rotate-secret) call it after
// Load, and run again on every reload; check-config does not, so the example's
// /var/lib/akminio is accepted on a machine where it does not exist or belongs to the
// service's user.
func (c *Config) RequireStateDir() error {
	var p problems
	checkStateDir(&p, c.StateDir, os.Geteuid())
	return p.err()
}

func checkStateDir(p *problems, dir string, uid int) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		p.add("state_dir", "cannot use %s: %v", dir, unwrapPath(err))
		return
	case !fi.IsDir():
		p.add("state_dir", "%s is not a directory", dir)
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		p.add("state_dir", "%s is owned by uid %d, not by akminio's user (uid %d): whoever owns it could plant akminio's state; chown it to akminio's user", dir, st.Uid, uid)
	}
	if mode := fi.Mode().Perm(); mode&0o022 != 0 {
		p.add("state_dir", "%s is writable by group or others (mode %04o): they could plant akminio's state; chmod 700 it", dir, mode)
	}
}
