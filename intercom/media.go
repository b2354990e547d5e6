package intercom

import (
	"encoding/json"

	"github.com/intercomd/intercomd/signaling"
)

// The media session of a call plugs in here; without one the engine does
// signalling only.

func (e *Engine) onMediaMessage(env signaling.Envelope) {}

func (e *Engine) onMediaControl(c *call, command int) {}

func (e *Engine) onMediaAnswer(c *call, answer string) {}

func (e *Engine) closeMedia(c *call) {}

func (e *Engine) mediaStats(c *call) json.RawMessage { return nil }
