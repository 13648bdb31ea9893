package app

import (
	"github.com/prometheus/client_golang/prometheus"
)

// sfuCollector exposes, per room the SFU has served, its mode and the
// SFU's counters. Counters are cumulative: per-second rates are
// Prometheus's rate() of them.
type sfuCollector struct {
	a *App

	mode, publishers, subscribers                    *prometheus.Desc
	packetsIn, bitsIn, packetsOut, bitsOut           *prometheus.Desc
	nacksReceived, nacksSent, plis, freezes, dropped *prometheus.Desc
}

func newSFUCollector(a *App) *sfuCollector {
	room := []string{"room"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string{}, room...), labels...), nil)
	}
	return &sfuCollector{a: a,
		mode:          d("crisisroom_room_mode", "The room's media mode now (1 for the mode it is in).", "mode"),
		publishers:    d("crisisroom_sfu_publishers", "Members publishing at least one track to the SFU."),
		subscribers:   d("crisisroom_sfu_subscribers", "Members receiving at least one track from the SFU."),
		packetsIn:     d("crisisroom_sfu_packets_in_total", "RTP packets received from publishers (before the rate cap)."),
		bitsIn:        d("crisisroom_sfu_bits_in_total", "Bits of RTP received from publishers."),
		packetsOut:    d("crisisroom_sfu_packets_out_total", "RTP packets written to subscribers (one per subscriber)."),
		bitsOut:       d("crisisroom_sfu_bits_out_total", "Bits of RTP written to subscribers."),
		nacksReceived: d("crisisroom_sfu_nacks_received_total", "RTCP NACKs from subscribers (answered from the SFU's buffers)."),
		nacksSent:     d("crisisroom_sfu_nacks_sent_total", "RTCP NACKs the SFU sent to publishers."),
		plis:          d("crisisroom_sfu_plis_sent_total", "Keyframe requests (PLI) sent to publishers, at most one per source per 500 ms."),
		freezes:       d("crisisroom_sfu_freezes_total", "Forwarded video tracks silent over 500 ms while their publisher was there."),
		dropped:       d("crisisroom_sfu_dropped_packets_total", "RTP packets the SFU dropped, by why: rate_cap (a publisher over its cap) or stuck (a subscriber not keeping up).", "why"),
	}
}

func (c *sfuCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.mode, c.publishers, c.subscribers, c.packetsIn, c.bitsIn, c.packetsOut,
		c.bitsOut, c.nacksReceived, c.nacksSent, c.plis, c.freezes, c.dropped} {
		ch <- d
	}
}

func (c *sfuCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.a.media.stats() {
		r := st.Room
		mode := c.a.Rooms.Mode(r)
		for _, m := range []string{"mesh", "sfu"} {
			v := 0.0
			if m == mode {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.mode, prometheus.GaugeValue, v, r, m)
		}
		gauge := func(d *prometheus.Desc, v int) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), r)
		}
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{r}, labels...)...)
		}
		gauge(c.publishers, st.Publishers)
		gauge(c.subscribers, st.Subscribers)
		counter(c.packetsIn, st.PacketsIn)
		counter(c.bitsIn, st.BitsIn)
		counter(c.packetsOut, st.PacketsOut)
		counter(c.bitsOut, st.BitsOut)
		counter(c.nacksReceived, st.NACKsReceived)
		counter(c.nacksSent, st.NACKsSent)
		counter(c.plis, st.PLIsSent)
		counter(c.freezes, st.Freezes)
		counter(c.dropped, st.DroppedRateCap, "rate_cap")
		counter(c.dropped, st.DroppedStuck, "stuck")
	}
}
