package territory

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// DefaultAPI is the official French geographic API (api.gouv.fr, run by Etalab).
const DefaultAPI = "https://geo.api.gouv.fr"

// ValidDepartement reports whether s is a département code: two digits,
// 2A or 2B, or 971 to 976 for overseas.
func ValidDepartement(s string) bool {
	switch {
	case s == "2A" || s == "2B":
		return true
	case len(s) == 2:
		return isDigits(s) && s != "00" && s != "20" // 20 became 2A and 2B in 1976
	case len(s) == 3:
		return isDigits(s) && s >= "971" && s <= "976"
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// DepartementURL is the API address of the commune boundaries of a
// département: api/departements/DEP/communes as GeoJSON contours with
// code, nom and population.
func DepartementURL(api, departement string) (string, error) {
	if !ValidDepartement(departement) {
		return "", fmt.Errorf("territory: %q is not a département code (e.g. 56, 2A, 974)", departement)
	}
	base, err := url.Parse(strings.TrimRight(api, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("territory: API URL %q: want http(s)://host[/path]", api)
	}
	base.Path += "/departements/" + departement + "/communes"
	base.RawQuery = "format=geojson&geometry=contour&fields=code,nom,population"
	return base.String(), nil
}

// Fetch downloads the commune boundaries of a département from the geo API
// at api (DefaultAPI in production) and validates them. It returns the
// bytes as received, to be saved and given to Load later, and the
// territory they describe. Every commune code must belong to the
// département, which catches a wrong API URL or département.
func Fetch(ctx context.Context, api, departement string) ([]byte, *Territory, error) {
	u, err := DepartementURL(api, departement)
	if err != nil {
		return nil, nil, err
	}
	data, err := download(ctx, u, MaxInputBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("territory: fetch: %w", err)
	}
	t, err := parse(data, nil, u, "")
	if err != nil {
		return nil, nil, err
	}
	for _, c := range t.Communes {
		if !strings.HasPrefix(c.Code, departement) {
			return nil, nil, fmt.Errorf("territory: fetch %s: commune %s (%s) is not in département %s", u, c.Code, c.Name, departement)
		}
	}
	return data, t, nil
}
