package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"crisisroom/protocol"
)

// turnRuntime hands out ICE servers with per-member TURN credentials and
// runs the built-in TURN server when enabled.
type turnRuntime struct {
	cfg    Config
	secret string
	log    *slog.Logger
}

func startTURN(_ context.Context, cfg Config, secret string, log *slog.Logger) (*turnRuntime, error) {
	if cfg.TURNEnabled {
		return nil, errors.New("built-in TURN: not available in this build yet")
	}
	return &turnRuntime{cfg: cfg, secret: secret, log: log}, nil
}

// iceServers: STUN as configured, then TURN with credentials in the scheme
// coturn calls use-auth-secret (username "expiry:member", password
// base64(HMAC-SHA1(secret, username))), valid for TURNCredTTL.
func (t *turnRuntime) iceServers(memberID string) []protocol.ICEServer {
	out := staticICE(t.cfg)
	if len(t.cfg.TURNURLs) > 0 {
		user, pass := restCredentials(t.secret, memberID, time.Now().Add(t.cfg.TURNCredTTL))
		out = append(out, protocol.ICEServer{URLs: t.cfg.TURNURLs, Username: user, Credential: pass})
	}
	return out
}

func restCredentials(secret, memberID string, expires time.Time) (user, pass string) {
	user = fmt.Sprintf("%d:%s", expires.Unix(), memberID)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(user))
	return user, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (t *turnRuntime) status() (string, bool) { return "", false }

func (t *turnRuntime) close() {}
