package signaling_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/intercomd/intercomd/signaling"
	"github.com/intercomd/intercomd/signaling/sigtest"
)

// reportPercentiles adds p50/p99 in microseconds to the benchmark output.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkQoS1Hop measures one bare QoS 1 publish → delivery between two
// paho clients through the broker under test (embedded, or
// $INTERCOMD_TEST_BROKER): the floor every signalling latency is compared
// against.
func BenchmarkQoS1Hop(b *testing.B) {
	broker := sigtest.Broker(b)
	topic := sigtest.Prefix(b) + "/hop"
	sub := newRaw(b, broker)
	got := make(chan time.Time, 1)
	if tok := sub.Subscribe(topic, 1, func(paho.Client, paho.Message) { got <- time.Now() }); !tok.WaitTimeout(sigtest.Timeout) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	pub := newRaw(b, broker)
	payload := []byte(strings.Repeat("x", 200)) // about a small envelope
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		pub.Publish(topic, 1, false, payload)
		select {
		case at := <-got:
			lat = append(lat, at.Sub(start))
		case <-time.After(sigtest.Timeout):
			b.Fatal("message lost")
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func benchEnvelope() signaling.Envelope {
	env := validEnvelopes()[0] // an invite with an SDP offer
	env.Payload.(*signaling.Invite).Offer = strings.Repeat("a=candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host\r\n", 20)
	return env
}

func BenchmarkEncode(b *testing.B) {
	env := benchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signaling.Encode(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := signaling.Encode(benchEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signaling.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
