package reconcile

import "runtime/debug"

// OwnUserAgent starts the User-Agent of every request akminio's adapters send
// ("akminio/<version>"). authentik records it in the events a write causes and MinIO in
// its audit log, so the daemon's hooks know akminio's own writes by it and do not run again
// for them. The adapters set it themselves (reconcile/authentik and reconcile/minio, option
// WithVersion), so no wiring can forget it.
const OwnUserAgent = "akminio/"

// UserAgent is OwnUserAgent followed by version; "" stands for the module version Go
// recorded in the binary, or "(devel)".
func UserAgent(version string) string {
	if version == "" {
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			version = info.Main.Version
		} else {
			version = "(devel)"
		}
	}
	return OwnUserAgent + version
}
