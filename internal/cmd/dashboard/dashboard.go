package main

import (
	"bytes"
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// panel builds one panel of the dashboard. Each function below is one panel; panels lists
// them in the order they are laid out (left to right, then down; 24 columns a row).
type panel func() cog.Builder[dashboard.Panel]

// panels are the dashboard's panels. The first four are the stat row (6 columns each),
// then the time series (12 columns each).
var panels = []panel{
	timeSinceLastSuccess,
	backendUp,
	restartPending,
	secretAge,
	runResults,
	driftItems,
	rotations,
	changesApplied,
	leader,
}

// sel is the label selector every query uses: the instances picked in the $instance variable.
const sel = `{instance=~"$instance"}`

// datasource is the Prometheus data source picked in the $datasource variable.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).LegendFormat(legend)
}

func thresholds(base string, steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Value: nil, Color: base}}, steps...))
}

func step(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: &value, Color: color}
}

// valueText maps values to a text and colour (0 -> "down", red, ...).
func valueText(pairs ...[3]string) []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i, p := range pairs {
		opts[p[0]] = dashboard.ValueMappingResult{Text: cog.ToPtr(p[1]), Color: cog.ToPtr(p[2]), Index: cog.ToPtr(int32(i))}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

func statPanel(title, description string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(datasource).
		Span(6).Height(5).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone)
}

func seriesPanel(title, description string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(datasource).
		Span(12).Height(8).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).ShowLegend(true))
}

// timeSinceLastSuccess: how long ago the last run finished without error
// (akminio_last_success_timestamp_seconds; the AkminioNoRecentSuccess alert fires past 15 minutes).
func timeSinceLastSuccess() cog.Builder[dashboard.Panel] {
	return statPanel("Time since last success",
		"Since the last reconcile run that finished without error. Nothing shown: no run has succeeded since akminio started.").
		Unit("s").Thresholds(thresholds("green", step(15*60, "orange"), step(60*60, "red"))).
		NoValue("never").
		WithTarget(query(`time() - (akminio_last_success_timestamp_seconds`+sel+` > 0)`, "{{instance}}").Instant())
}

// backendUp: whether authentik and MinIO answered the last observation.
func backendUp() cog.Builder[dashboard.Panel] {
	return statPanel("Backend up", "Whether authentik and MinIO answered akminio's last observation.").
		Mappings(valueText([3]string{"0", "down", "red"}, [3]string{"1", "up", "green"})).
		Thresholds(thresholds("red", step(1, "green"))).
		WithTarget(query(`akminio_backend_up`+sel, "{{system}}").Instant())
}

// restartPending: an identity_openid write that MinIO applies only after a restart.
func restartPending() cog.Builder[dashboard.Panel] {
	return statPanel("MinIO restart pending",
		"An identity_openid change is written but MinIO applies it only after a restart (minio.restart: never, or the restart failed).").
		Mappings(valueText([3]string{"0", "no", "green"}, [3]string{"1", "pending", "orange"})).
		Thresholds(thresholds("green", step(1, "orange"))).
		WithTarget(query(`max by (instance) (akminio_minio_restart_pending`+sel+`)`, "{{instance}}").Instant())
}

// secretAge: the age of the OAuth2 client secret akminio last rotated.
func secretAge() cog.Builder[dashboard.Panel] {
	return statPanel("Client secret age",
		"Since akminio last rotated the OAuth2 client secret. Nothing shown: never rotated by akminio. The AkminioSecretTooOld alert fires past 35 days.").
		Unit("s").Thresholds(thresholds("green", step(35*24*3600, "orange"))).
		NoValue("never rotated").
		WithTarget(query(`time() - (akminio_client_secret_rotated_timestamp_seconds`+sel+` > 0)`, "{{instance}}").Instant())
}

// runResults: reconcile runs by result over time.
func runResults() cog.Builder[dashboard.Panel] {
	return seriesPanel("Reconcile runs", "Runs by result: in_sync, repaired, drift (left drift), error (terminal failure), transient (failure the next run may not have).").
		Unit("short").Min(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		WithTarget(query(`sum by (result) (increase(akminio_reconcile_runs_total`+sel+`[$__rate_interval]))`, "{{result}}"))
}

// driftItems: the drift the last run left, by system and kind.
func driftItems() cog.Builder[dashboard.Panel] {
	return seriesPanel("Drift items", "Drift left after the last run, by system and kind (in report mode, or blocked changes, a pending restart, a failed verification).").
		Unit("short").Min(0).
		WithTarget(query(`sum by (system, kind) (akminio_drift_items`+sel+`)`, "{{system}} {{kind}}"))
}

// rotations: client secret rotations by result.
func rotations() cog.Builder[dashboard.Panel] {
	return seriesPanel("Secret rotations", "Client secret rotations by result: success, failed, rolled_back.").
		Unit("short").Min(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		WithTarget(query(`sum by (result) (increase(akminio_secret_rotations_total`+sel+`[$__rate_interval]))`, "{{result}}"))
}

// changesApplied: what akminio wrote, by system, kind and action.
func changesApplied() cog.Builder[dashboard.Panel] {
	return seriesPanel("Changes applied", "Changes akminio applied, by system, kind and action.").
		Unit("short").Min(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		WithTarget(query(`sum by (system, kind, action) (increase(akminio_changes_applied_total`+sel+`[$__rate_interval]))`, "{{system}} {{kind}} {{action}}"))
}

// leader: which instance holds the HA leader lease (akminio_leader; 1 on a single host).
func leader() cog.Builder[dashboard.Panel] {
	return seriesPanel("Leader", "1 for the instance that holds the leader lease and writes; 0 for followers. A single host without ha is always 1.").
		Unit("short").Min(0).Max(1).LineInterpolation(common.LineInterpolationStepAfter).
		WithTarget(query(`max by (instance) (akminio_leader`+sel+`)`, "{{instance}}"))
}

// build returns the dashboard with the given panels as indented JSON, ending in a newline.
func build(ps []panel) ([]byte, error) {
	b := dashboard.NewDashboardBuilder("akminio").
		Uid("akminio").
		Description("akminio keeps authentik and MinIO consistent: its runs, drift, backends, restarts and client secret. Generated by internal/cmd/dashboard (make dashboard).").
		Tags([]string{"akminio", "minio", "authentik"}).
		Refresh("1m").
		Time("now-24h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").Label("Instance").
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(akminio_backend_up, instance)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Multi(true).IncludeAll(true).AllValue(".*"))
	for _, p := range ps {
		b.WithPanel(p())
	}
	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // keep PromQL's > and < readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
