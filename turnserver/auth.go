package turnserver

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Credentials mints short-lived TURN credentials in the scheme coturn calls
// use-auth-secret (the "TURN REST API" draft): username "expiryUnix:user",
// password base64(HMAC-SHA1(secret, username)). The built-in server checks
// them with the same function, and an external coturn configured with the
// same static-auth-secret accepts them too, so one secret serves both.
func Credentials(secret, user string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, hmacPassword(secret, username)
}

func hmacPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// parseUsername splits "expiryUnix:user". The user part is what quotas are
// keyed on: every credential minted for one participant shares it.
func parseUsername(username string) (expires time.Time, user string, ok bool) {
	ts, user, found := strings.Cut(username, ":")
	if !found || user == "" {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(n, 0), user, true
}

// authHandler checks use-auth-secret credentials. It returns the long-term
// key derived from the expected password; pion then checks the request's
// MESSAGE-INTEGRITY with it, so a wrong password fails there. The returned
// userID (the member part) is what the quota and the allocation events see.
//
// Expiry is enforced on Allocate only, as coturn does (it caches the key
// for the session): a browser keeps refreshing its allocation, permissions
// and channels with the credentials it allocated with, so checking expiry
// on those would cut every relayed call TTL minutes after the join. pion
// serves Refresh, CreatePermission and ChannelBind only for an allocation
// of the same 5-tuple and user, so an expired credential cannot open
// anything new.
func authHandler(secret string, now func() time.Time, log *slog.Logger) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		expires, user, ok := parseUsername(ra.Username)
		if !ok {
			log.Debug("turn: malformed username", "username", ra.Username, "src", ra.SrcAddr)
			return "", nil, false
		}
		if ra.Method == stun.MethodAllocate && !expires.After(now()) {
			log.Debug("turn: expired credentials", "user", user, "src", ra.SrcAddr)
			return "", nil, false
		}
		pass := hmacPassword(secret, ra.Username)
		return user, turn.GenerateAuthKey(ra.Username, ra.Realm, pass), true
	}
}
