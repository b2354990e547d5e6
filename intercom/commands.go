package intercom

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/intercomd/intercomd/signaling"
)

// Answer accepts or rejects the call ringing now (a button, a command).
func (e *Engine) Answer(ctx context.Context, accepted bool) error {
	s, err := e.State(ctx)
	if err != nil {
		return err
	}
	if s.State != StateRinging {
		return errorf(CodeChannelInvalid, "nothing is ringing (state %s)", s.State)
	}
	return e.Response(ctx, BeCallingInfo{ChannelID: s.ChannelID}, accepted)
}

// commandTimeout bounds one MQTT command; Response waits for the caller.
const commandTimeout = 15 * time.Second

// handleRequest runs a command from the request topic and answers it on
// the response topic. Commands run concurrently with the client's
// dispatch goroutine because answering waits for the peer.
func (ep *Endpoint) handleRequest(req signaling.Request) {
	ep.wg.Add(1)
	go func() {
		defer ep.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		var data json.RawMessage
		var err error
		if cmd := ep.cfg.Commands[req.Action]; cmd != nil {
			var result any
			if result, err = cmd(ctx, req); err == nil && result != nil {
				data, err = json.Marshal(result)
			}
		} else {
			data, err = ep.Engine.Do(ctx, req)
		}
		resp := signaling.CommandResponse{Transaction: req.Transaction, Status: "ok", Data: data}
		if err != nil {
			resp.Status = "error"
			resp.Error = err.Error()
			resp.Code = ErrorCode(err)
		}
		ep.log.Info("command", "action", req.Action, "transaction", req.Transaction, "status", resp.Status, "err", resp.Error)
		if err := ep.Client.Respond(resp); err != nil {
			ep.log.Warn("command response not sent", "transaction", req.Transaction, "err", err)
		}
	}()
}

// Do runs one command (as carried by the MQTT request topic or typed in
// intercomctl) and returns its result as JSON.
func (e *Engine) Do(ctx context.Context, req signaling.Request) (json.RawMessage, error) {
	var result any
	var err error
	switch req.Action {
	case "call":
		typ := req.Type
		if typ == 0 {
			typ = TypeVideo
		}
		var push *signaling.PushConfig
		if req.ForceKeepCalling || req.Custom != "" {
			push = &signaling.PushConfig{ForceKeepCalling: req.ForceKeepCalling, Custom: req.Custom}
		}
		result, err = e.Call(ctx, CallOptions{Type: typ, Account: req.Account, PushConfig: push})
	case "answer":
		err = e.answerCommand(ctx, req.Channel, true)
	case "reject":
		err = e.answerCommand(ctx, req.Channel, false)
	case "hangup":
		err = e.Hangup(ctx)
	case "control":
		err = e.Control(ctx, req.Channel, req.Command)
	case "status":
		result, err = e.State(ctx)
	default:
		err = errorf(CodeInvalidArgument, "unknown action %q (want call, answer, reject, hangup, control or status)", req.Action)
	}
	if err != nil {
		return nil, err
	}
	if result == nil {
		return nil, nil
	}
	data, mErr := json.Marshal(result)
	if mErr != nil {
		return nil, fmt.Errorf("encode %s result: %w", req.Action, mErr)
	}
	return data, nil
}

func (e *Engine) answerCommand(ctx context.Context, channel string, accepted bool) error {
	if channel == "" {
		return e.Answer(ctx, accepted)
	}
	return e.Response(ctx, BeCallingInfo{ChannelID: channel}, accepted)
}

// OnlineDevices lists the devices of account whose presence is online.
func (e *Engine) OnlineDevices(ctx context.Context, account string) ([]string, error) {
	var devs []string
	err := e.exec(ctx, func() { devs = e.onlineDevices(account) })
	return devs, err
}
