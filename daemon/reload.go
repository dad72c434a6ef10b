package daemon

import (
	"fmt"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// reload re-reads the config (SIGHUP). systemd hears RELOADING=1 with MONOTONIC_USEC, then
// READY=1 whatever the outcome. An invalid config, or one the engine cannot be built from,
// is logged and rejected (akminio_config_last_reload_successful 0): the old one stays in
// force. A valid one replaces the engine (for the next run; a run in progress finishes on
// the old one), the alert receivers, the schedule and the secrets to scrub. http.listen and
// log settings take effect only on restart.
func (d *Daemon) reload() {
	d.notify(sd.SdNotifyReloading + "\n" + sd.SdNotifyMonotonicUsec())
	err := d.tryReload()
	status := "config reloaded"
	if err != nil {
		d.metrics.reloadOK.Set(0)
		d.log.Error("config reload rejected; keeping the config in force", zap.String("error", d.scrub(err.Error())))
		status = "config reload rejected, old config kept"
	} else {
		d.metrics.reloadOK.Set(1)
		d.log.Info("config reloaded", zap.String("path", d.config().Path))
	}
	d.mu.Lock()
	d.reloadOK = err == nil
	d.mu.Unlock()
	d.notify(sd.SdNotifyReady + "\nSTATUS=" + status)
}

func (d *Daemon) tryReload() error {
	if d.opts.Reload == nil {
		return fmt.Errorf("reloading is not supported here")
	}
	cfg, err := d.opts.Reload()
	if err != nil {
		return err
	}
	runner, err := d.opts.NewRunner(cfg)
	if err != nil {
		return fmt.Errorf("build the engine: %w", err)
	}
	old := d.config()
	d.mu.Lock()
	sched := d.sched
	d.mu.Unlock()
	if sched != nil {
		if err := d.schedule(sched, cfg); err != nil {
			return err
		}
	}
	if cfg.HTTP.Listen != old.HTTP.Listen {
		d.log.Warn("http.listen changed; it takes effect on restart", zap.String("listening", old.HTTP.Listen))
	}
	if cfg.Log != old.Log {
		d.log.Warn("log settings changed; they take effect on restart")
	}
	if d.opts.Scrubber != nil {
		d.opts.Scrubber.Set(append(old.SecretValues(), cfg.SecretValues()...)...)
	}
	d.mu.Lock()
	d.cfg, d.runner = cfg, runner
	d.mu.Unlock()
	d.alerts.configure(cfg.Alerts)
	return nil
}
