package lab

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart colours: the two arms stand apart, wsguard's own figures are a
// dashed third colour, limits and the attack window are grey.
var (
	colorUnprotected = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	colorProtected   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	colorGuard       = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	colorLimit       = color.RGBA{R: 60, G: 60, B: 60, A: 255}
	colorAttack      = color.RGBA{R: 150, G: 150, B: 150, A: 255}
)

// chartWidth and chartHeight are the size of every chart.
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 3.6 * vg.Inch
)

// chart is one chart of a scenario: the file it goes to and its title.
type chart struct {
	File  string `json:"file"`
	Title string `json:"title"`
}

// series is one line of a chart.
type series struct {
	label  string
	xys    plotter.XYs
	color  color.Color
	dashed bool
	step   bool
	wide   bool // drawn wider, so that a line drawn over it leaves it visible
}

// chartSpec is what a chart shows.
type chartSpec struct {
	name, title, ylabel string
	lines               []series
	hline               *series // a limit, drawn across the whole chart
	yMin, yMax          float64 // yMax 0: from the data
	percent             bool    // label the y axis 0 to 100 only
}

// writeCharts draws the charts of one scenario into dir and returns
// them in the order the report shows them.
func writeCharts(dir string, sr ScenarioResult) ([]chart, error) {
	var out []chart
	for _, spec := range chartSpecs(sr) {
		file := sr.Name + "-" + spec.name + ".png"
		if err := drawChart(filepath.Join(dir, file), spec, sr.DurationS); err != nil {
			return nil, fmt.Errorf("chart %s: %w", file, err)
		}
		out = append(out, chart{File: file, Title: spec.title})
	}
	return out, nil
}

// chartSpecs lists the charts of a scenario.
func chartSpecs(sr ScenarioResult) []chartSpec {
	un, pr := sr.Arms[Unprotected], sr.Arms[Protected]
	arms := func(f func(Sample) float64) []series {
		return []series{
			{label: "protected: backend behind wsguard", xys: sampleXYs(pr.BackendSeries, f), color: colorProtected, wide: true},
			{label: "unprotected: backend", xys: sampleXYs(un.BackendSeries, f), color: colorUnprotected},
		}
	}
	guard := func(f func(Sample) float64) series {
		return series{label: "protected: wsguard itself", xys: sampleXYs(pr.GuardSeries, f), color: colorGuard, dashed: true}
	}
	limit := float64(max(un.BackendFDLimit, pr.BackendFDLimit))
	specs := []chartSpec{
		{
			name: "probe", title: sr.Name + ": probe success (a real user's view)",
			ylabel: "probes that got their echo (%)", yMin: 0, yMax: 140, percent: true,
			lines: []series{
				{label: "protected", xys: probeXYs(pr.ProbeSeries), color: colorProtected, step: true, wide: true},
				{label: "unprotected", xys: probeXYs(un.ProbeSeries), color: colorUnprotected, step: true},
			},
		},
		{
			name: "connections", title: sr.Name + ": the backend's established connections",
			ylabel: "TCP connections",
			lines:  arms(func(s Sample) float64 { return float64(s.Conns) }),
		},
		{
			name: "fds", title: sr.Name + ": open descriptors",
			ylabel: "descriptors",
			lines: append(arms(func(s Sample) float64 { return float64(s.FDs) }),
				guard(func(s Sample) float64 { return float64(s.FDs) })),
		},
		{
			name: "cpu", title: sr.Name + ": CPU",
			ylabel: "CPU (% of one core)",
			lines: append(arms(func(s Sample) float64 { return s.CPUPercent }),
				guard(func(s Sample) float64 { return s.CPUPercent })),
		},
		{
			name: "rss", title: sr.Name + ": resident memory",
			ylabel: "RSS (MiB)",
			lines: append(arms(func(s Sample) float64 { return float64(s.RSSBytes) / (1 << 20) }),
				guard(func(s Sample) float64 { return float64(s.RSSBytes) / (1 << 20) })),
		},
	}
	if limit > 0 {
		specs[2].hline = &series{label: fmt.Sprintf("the backend's limit (%.0f)", limit),
			xys: plotter.XYs{{Y: limit}}, color: colorLimit, dashed: true}
	}
	return specs
}

// sampleXYs maps samples to points by f.
func sampleXYs(s []Sample, f func(Sample) float64) plotter.XYs {
	xys := make(plotter.XYs, len(s))
	for i, smp := range s {
		xys[i] = plotter.XY{X: smp.T, Y: f(smp)}
	}
	return xys
}

// probeXYs maps the probe's seconds to success percentages; a second
// without an attempt is left out.
func probeXYs(ps []ProbeSecond) plotter.XYs {
	var xys plotter.XYs
	for _, p := range ps {
		if p.Attempts > 0 {
			xys = append(xys, plotter.XY{X: p.T, Y: 100 * float64(p.Successes) / float64(p.Attempts)})
		}
	}
	return xys
}

// drawChart draws spec to a PNG at path, with the attack's window marked
// from 0 to attackEnd.
func drawChart(path string, spec chartSpec, attackEnd float64) error {
	p := plot.New()
	p.Title.Text = spec.title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "seconds since the attack started"
	p.Y.Label.Text = spec.ylabel
	p.Add(plotter.NewGrid())

	xMin, xMax, yMax := 0.0, attackEnd, 0.0
	for _, s := range spec.lines {
		for _, xy := range s.xys {
			xMin, xMax, yMax = math.Min(xMin, xy.X), math.Max(xMax, xy.X), math.Max(yMax, xy.Y)
		}
	}
	if spec.hline != nil {
		yMax = math.Max(yMax, spec.hline.xys[0].Y)
	}
	if yMax <= 0 {
		yMax = 1
	}
	p.X.Min, p.X.Max = xMin, xMax
	p.X.Tick.Marker = secondTicks{}
	p.Y.Min, p.Y.Max = spec.yMin, yMax*1.5 // room for the legend at the top
	if spec.yMax > 0 {
		p.Y.Max = spec.yMax
	}
	p.Y.Tick.Marker = niceTicks{}
	if spec.percent {
		p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"},
			{Value: 25, Label: "25"}, {Value: 50, Label: "50"}, {Value: 75, Label: "75"}, {Value: 100, Label: "100"}})
	}

	// The attack's window, as two grey lines.
	for i, x := range []float64{0, attackEnd} {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: colorAttack, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(2), vg.Points(3)}}
		p.Add(l)
		if i == 0 {
			p.Legend.Add(fmt.Sprintf("attack (0 to %.0f s)", attackEnd), l)
		}
	}
	if h := spec.hline; h != nil {
		s := *h
		s.xys = plotter.XYs{{X: xMin, Y: h.xys[0].Y}, {X: xMax, Y: h.xys[0].Y}}
		if err := addLine(p, s); err != nil {
			return err
		}
	}
	for _, s := range spec.lines {
		if len(s.xys) == 0 {
			continue
		}
		if err := addLine(p, s); err != nil {
			return err
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(8)
	return p.Save(chartWidth, chartHeight, path)
}

// addLine adds one series to p and its legend.
func addLine(p *plot.Plot, s series) error {
	l, err := plotter.NewLine(s.xys)
	if err != nil {
		return err
	}
	l.LineStyle = draw.LineStyle{Color: s.color, Width: vg.Points(2)}
	if s.wide {
		l.LineStyle.Width = vg.Points(4)
	}
	if s.dashed {
		l.LineStyle.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	if s.step {
		l.StepStyle = plotter.PostStep
	}
	p.Add(l)
	p.Legend.Add(s.label, l)
	return nil
}

// secondTicks marks every second and labels every second or fifth one,
// so that a reader can tell when things happened.
type secondTicks struct{}

// Ticks returns the ticks from lo to hi.
func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	every := 2.0
	if hi-lo > 40 {
		every = 5
	}
	var ticks []plot.Tick
	for x := math.Ceil(lo); x <= hi; x++ {
		t := plot.Tick{Value: x}
		if math.Mod(x, every) == 0 {
			t.Label = fmt.Sprintf("%.0f", x)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// niceTicks labels 3 to 9 round values (1, 2 or 5 times a power of ten)
// between lo and hi: plot's default ticker may label only the ends.
type niceTicks struct{}

// Ticks returns the ticks from lo to hi.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return []plot.Tick{{Value: lo, Label: fmt.Sprintf("%g", lo)}}
	}
	step := niceStep((hi - lo) / 8)
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for i := math.Ceil(lo / step); i*step <= hi; i++ {
		label := strconv.FormatFloat(i*step, 'f', decimals, 64)
		if strings.Contains(label, ".") {
			label = strings.TrimRight(strings.TrimRight(label, "0"), ".")
		}
		ticks = append(ticks, plot.Tick{Value: i * step, Label: label})
	}
	return ticks
}

// niceStep returns the smallest of 1, 2 and 5 times a power of ten that
// is at least raw.
func niceStep(raw float64) float64 {
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}
