package web

import (
	"strconv"
	"time"

	"github.com/voxanne/voxanne"
)

// chart is a bar chart of calls per day, drawn by the template as inline SVG
// (no chart library, no script).
type chart struct {
	Width, Height int
	Bars          []bar
	Ticks         []tick
	Labels        []xlabel
	Total         int
}

type bar struct {
	X, Y, W, H int
	Label      string
	N          int
}

type tick struct {
	Y     int
	Label string
}

type xlabel struct {
	X    int
	Text string
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 720, 200
	chartLeft, chartBottom = 32, 22
	chartTop               = 12
)

// dayChart lays out one bar per day from `from`, days long; days without
// calls are zero.
func dayChart(byDay []voxanne.DayCount, from time.Time, days int) chart {
	counts := map[string]int{}
	for _, d := range byDay {
		counts[d.Date] = d.Calls
	}
	c := chart{Width: chartW, Height: chartH}
	maxN := 0
	for i := 0; i < days; i++ {
		n := counts[from.AddDate(0, 0, i).Format(time.DateOnly)]
		maxN = max(maxN, n)
		c.Total += n
	}
	top := niceMax(maxN)
	plotW, plotH := chartW-chartLeft, chartH-chartBottom-chartTop
	slot := plotW / days
	gap := max(1, slot/5)
	for i := 0; i < days; i++ {
		day := from.AddDate(0, 0, i)
		n := counts[day.Format(time.DateOnly)]
		h := 0
		if top > 0 {
			h = n * plotH / top
		}
		if n > 0 && h < 2 {
			h = 2
		}
		x := chartLeft + i*slot + gap/2
		c.Bars = append(c.Bars, bar{X: x, Y: chartTop + plotH - h, W: slot - gap, H: h, N: n,
			Label: day.Format("Mon Jan 2") + ": " + strconv.Itoa(n) + " calls"})
		every := max(1, days/7)
		if i%every == 0 {
			c.Labels = append(c.Labels, xlabel{X: x + (slot-gap)/2, Text: day.Format("Jan 2")})
		}
	}
	for _, v := range []int{0, top / 2, top} {
		y := chartTop + plotH
		if top > 0 {
			y = chartTop + plotH - v*plotH/top
		}
		c.Ticks = append(c.Ticks, tick{Y: y, Label: strconv.Itoa(v)})
	}
	return c
}

// niceMax rounds n up to a value that halves evenly (at least 2).
func niceMax(n int) int {
	if n <= 2 {
		return 2
	}
	for _, step := range []int{2, 4, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if n <= step {
			return step
		}
	}
	return (n + 9999) / 10000 * 10000
}
