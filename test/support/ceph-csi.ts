// What ceph-csi's RBD node plugin authenticates with, given the data of the Secret a PV names in nodeStageSecretRef.
// Written from ceph-csi's internal/util/credentials.go (NewUserCredentialsWithMigration, isMigrationSecret,
// ParseAndSetSecretMapFromMigSecret, newCredentialsFromSecret), on purpose apart from src/rbd/node-secret.ts: the
// e2e tests check the controller against the documented rules, not against its own reading of them.

/** `data` as the kubelet hands it over: decoded strings. Throws with ceph-csi's own message when it would fail. */
export function cephCsiNodeCredentials(data: Readonly<Record<string, string>>): { user: string; key: string } {
  let secrets: Record<string, string> = { ...data };
  // isMigrationSecret: a non-empty map with a non-empty "key".
  if (Object.keys(secrets).length !== 0 && (secrets['key'] ?? '') !== '') {
    secrets = { userKey: secrets['key']!, userID: (secrets['adminId'] ?? '') !== '' ? secrets['adminId']! : 'admin' };
  }
  // newCredentialsFromSecret("userID", "userKey", ...)
  if (Object.keys(secrets).length === 0) throw new Error('provided secret is empty');
  if (!('userID' in secrets)) throw new Error("missing ID field 'userID' in secrets");
  const key = secrets['userKey'] ?? '';
  if (key === '') throw new Error("missing key field 'userKey' in secrets");
  return { user: secrets['userID']!, key };
}

/** A Secret's base64 data, decoded as the kubelet does before NodeStageVolume. */
export function decodeSecretData(data: Readonly<Record<string, string>> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}
