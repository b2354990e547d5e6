package media

import (
	"testing"
	"time"

	"github.com/intercomd/intercomd/device"
)

func TestDbgTP640(t *testing.T) {
	e := testEngine(t)
	door := newEndpoint(t, e, "door", SessionOptions{CallType: CallTypeVideo, SendVideo: true, Video: device.VideoConfig{Width: 640, Height: 480, FPS: 15}},
		Devices{Video: &device.TestPattern{Logger: testLogger()}})
	indoor := newEndpoint(t, e, "indoor", SessionOptions{CallType: CallTypeVideo}, Devices{})
	c := connect(t, door, indoor)
	defer c.close(t)
	select {
	case d := <-indoor.first:
		t.Logf("first %v", d)
	case <-time.After(3 * time.Second):
		t.Logf("no first frame")
	}
	t.Logf("door %+v", door.s.Stats().Video)
	t.Logf("indoor %+v", indoor.s.Stats().Video)
}
