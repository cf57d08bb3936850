package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// chartNames are the proxies in chart order, with their labels.
var chartNames = []struct{ key, label string }{
	{"wsguard", "wsguard"}, {"nginx", "nginx"}, {"haproxy", "HAProxy"},
}

var chartColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
}

// writeCharts draws figures 1 to 4 as bar charts of the medians over the
// rounds.
func writeCharts(rep *report, out string) error {
	charts := []struct {
		file, title, unit string
		series            []string
		values            func(s sample) []float64
	}{
		{"idle-memory.png", "RSS per idle proxied WebSocket connection", "bytes",
			[]string{"bytes"}, func(s sample) []float64 { return []float64{s.BytesPerIdle} }},
		{"refusals.png", "Per-IP refusals (429) per CPU second of the proxy", "refusals / CPU s",
			[]string{"refusals per CPU second"},
			func(s sample) []float64 { return []float64{div(float64(s.Refusals), s.RefusalCPUSec)} }},
		{"latency.png", "Request-reply round trip through the proxy", "ms",
			[]string{"p50", "p99"},
			func(s sample) []float64 { return []float64{s.LatencyP50MS, s.LatencyP99MS} }},
		{"throughput.png", "Small messages relayed per second", "messages / s",
			[]string{"messages per second"},
			func(s sample) []float64 { return []float64{s.MessagesPerSec} }},
	}
	for _, c := range charts {
		var names []string
		var rows [][]float64
		for _, n := range chartNames {
			if ss, ok := rep.Samples[n.key]; ok {
				names = append(names, n.label)
				rows = append(rows, medianValues(ss, c.values))
			}
		}
		if c.file == "latency.png" {
			names = append(names, "direct")
			rows = append(rows, medianValues(rep.Direct, c.values))
		}
		if err := barChart(filepath.Join(out, c.file), c.title, c.unit, names, c.series, rows); err != nil {
			return fmt.Errorf("drawing %s: %w", c.file, err)
		}
	}
	return nil
}

// medianValues is, for each series, the median over the rounds of the
// value computed from each round's sample: the same as the table shows.
func medianValues(ss []sample, values func(s sample) []float64) []float64 {
	if len(ss) == 0 {
		return nil
	}
	out := make([]float64, len(values(ss[0])))
	for j := range out {
		xs := make([]float64, len(ss))
		for i, s := range ss {
			xs[i] = values(s)[j]
		}
		out[j] = median(xs)
	}
	return out
}

// barChart draws one group of bars per name, one bar per series.
func barChart(file, title, unit string, names, series []string, rows [][]float64) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	width := vg.Points(40)
	if len(series) > 1 {
		width = vg.Points(24)
	}
	for j, name := range series {
		vals := make(plotter.Values, len(rows))
		for i, r := range rows {
			vals[i] = r[j]
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color = chartColors[j%len(chartColors)]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(j)-float64(len(series)-1)/2) * width
		p.Add(bars)
		if len(series) > 1 {
			p.Legend.Add(name, bars)
		}
	}
	p.Legend.Top = true
	p.NominalX(names...)
	p.Y.Min = 0
	return p.Save(6*vg.Inch, 3.5*vg.Inch, file)
}
