<?php
// Verifies Gatehouse's identity signature on a proxied request (RFC 9421, hmac-sha256, with an
// RFC 9530 Content-Digest of the body). PHP 7.4+, no extensions beyond the standard ones.
//
//   $id = gatehouse_verify($_SERVER['REQUEST_METHOD'], $_SERVER['REQUEST_URI'],
//                          getallheaders(), file_get_contents('php://input'),
//                          getenv('UPSTREAM_SIGNING_SECRET'));
//   if ($id === null) { http_response_code(403); exit; }
//   $id['user'];  // "usr_…" or null for an anonymous caller
//   $id['roles']; // ["user", …]
//   $id['auth'];  // "access_token" | "api_key" | "external_token" | "anonymous"
//   $id['issuer']; // set for "external_token" only: the TRUSTED_ISSUERS name
//
// It never throws: missing or malformed input (a header sent twice, getenv() giving false, …)
// answers null like a wrong signature.

function gatehouse_verify($method, $requestUri, $headers, $body, $secret, int $maxAge = 300): ?array
{
    try {
        return gatehouse_verify_checked($method, $requestUri, $headers, $body, $secret, $maxAge);
    } catch (\Throwable $e) {
        return null;
    }
}

function gatehouse_verify_checked($method, $requestUri, $headers, $body, $secret, int $maxAge): ?array
{
    if (!is_string($method) || !is_string($requestUri) || !is_array($headers) || !is_string($body)
        || !is_string($secret) || $secret === '') return null;
    $h = [];
    foreach ($headers as $name => $value) {
        // Only single string values: a repeated header is refused, not guessed at.
        if (!is_string($value)) return null;
        $h[strtolower((string)$name)] = $value;
    }
    $input = $h['signature-input'] ?? '';
    $signature = $h['signature'] ?? '';
    if (!preg_match('/^gatehouse=\(([^)]*)\)(.*)$/', $input, $m)) return null;
    if (!preg_match('/^gatehouse=:([A-Za-z0-9+\/=]+):$/', $signature, $s)) return null;
    $params = $m[2];
    if (!preg_match('/;created=(\d+)/', $params, $c) || abs(time() - (int)$c[1]) > $maxAge) return null;
    if (strpos($params, ';alg="hmac-sha256"') === false || strpos($params, ';keyid="gatehouse"') === false) return null;
    preg_match_all('/"([^"]+)"/', $m[1], $names);
    $components = $names[1];
    foreach (['@method', '@path', '@query', 'content-digest', 'x-gatehouse-auth', 'x-gatehouse-roles'] as $required) {
        if (!in_array($required, $components, true)) return null;
    }

    $digest = 'sha-256=:' . base64_encode(hash('sha256', $body, true)) . ':';
    if (!hash_equals($digest, $h['content-digest'] ?? '')) return null;

    $path = parse_url($requestUri, PHP_URL_PATH);
    $query = parse_url($requestUri, PHP_URL_QUERY);
    if (!is_string($path)) return null;
    $lines = [];
    foreach ($components as $name) {
        if ($name === '@method') $value = strtoupper($method);
        elseif ($name === '@path') $value = $path;
        elseif ($name === '@query') $value = '?' . ($query ?? '');
        elseif (isset($h[$name])) $value = trim($h[$name]);
        else return null;
        $lines[] = '"' . $name . '": ' . $value;
    }
    $lines[] = '"@signature-params": (' . $m[1] . ')' . $params;
    $expected = base64_encode(hash_hmac('sha256', implode("\n", $lines), $secret, true));
    if (!hash_equals($expected, $s[1])) return null;

    $auth = $h['x-gatehouse-auth'];
    $user = in_array('x-gatehouse-user', $components, true) ? $h['x-gatehouse-user'] : null;
    if ($auth !== 'anonymous' && !$user) return null;
    $roles = array_values(array_filter(explode(',', $h['x-gatehouse-roles']), 'strlen'));
    $id = ['auth' => $auth, 'user' => $user, 'roles' => $roles];
    // A trusted external issuer's caller: the TRUSTED_ISSUERS name that vouches for the user.
    if (in_array('x-gatehouse-issuer', $components, true)) $id['issuer'] = $h['x-gatehouse-issuer'];
    if ($auth === 'external_token' && !isset($id['issuer'])) return null;
    return $id;
}
