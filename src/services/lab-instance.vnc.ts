import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config.js';

export interface VncGrant {
  userId: number;
  labId: number;
  instanceId: number;
  namespace: string;
  /** VM names, first one opened; the order of the lab's VMs by id. */
  vmNames: string[];
}

export interface VncAccessData {
  token: string;
  expiresAt: Date;
  url: string;
  allowedVms: string[];
}

/**
 * The original websocket proxy's token (lab-orchestrator-lib-auth 0.0.5), byte-compatible: HS256
 * with VNC_TOKEN_SECRET (default SECRET_KEY), claims id, exp, iat and lab_instance.
 */
export async function issueVncAccess(vnc: Config['vnc'], grant: VncGrant, now = new Date()): Promise<VncAccessData> {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + vnc.tokenTtlSeconds;
  const token = await new SignJWT({
    id: grant.userId,
    lab_instance: {
      lab_id: grant.labId,
      lab_instance_id: grant.instanceId,
      namespace_name: grant.namespace,
      allowed_vmi_names: grant.vmNames,
    },
  })
    .setProtectedHeader({ typ: 'JWT', alg: 'HS256' })
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(vnc.tokenSecret));
  const url = vnc.console === 'labvnc' ? labVncUrl(vnc, token, grant.vmNames) : consoleUrl(vnc, token, grant.vmNames);
  return { token, expiresAt: new Date(exp * 1000), url, allowedVms: grant.vmNames };
}

/**
 * The built-in console page (VNC_CONSOLE=builtin): VNC_CONSOLE_URL with LabVNC's parameters in the
 * fragment (#path=[prefix/]{token}/{first vm}&allowed_vmis=vm1,vm2&autoconnect=1), so that the token
 * never reaches a server log or a Referer header.
 */
export function consoleUrl(vnc: Config['vnc'], token: string, vmNames: string[]): string {
  const path = [vnc.wsProxyPathPrefix, token, vmNames[0]].filter(Boolean).join('/');
  const fragment = [
    ['path', path],
    ['allowed_vmis', vmNames.join(',')],
    ['autoconnect', '1'],
  ]
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return `${vnc.consoleUrl}#${fragment}`;
}

/** The claims of a VNC token, as the original proxy reads them. */
export interface VncClaims {
  userId: number;
  labId: number;
  instanceId: number;
  namespace: string;
  allowedVms: string[];
  /** Unix seconds. */
  exp: number;
}

/**
 * Checks a VNC token as the original proxy did (HS256 with VNC_TOKEN_SECRET, not expired) and reads
 * its claims; `invalid` says why it is refused, in words that never repeat the token.
 */
export async function verifyVncToken(vnc: Config['vnc'], token: string): Promise<VncClaims | { invalid: 'expired' | 'invalid' }> {
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(vnc.tokenSecret), { algorithms: ['HS256'] });
    const li = payload.lab_instance as Record<string, unknown> | undefined;
    const names = li?.allowed_vmi_names;
    if (
      typeof payload.id !== 'number' ||
      typeof payload.exp !== 'number' ||
      !li ||
      typeof li.lab_instance_id !== 'number' ||
      typeof li.lab_id !== 'number' ||
      typeof li.namespace_name !== 'string' ||
      !Array.isArray(names) ||
      !names.every((n) => typeof n === 'string')
    ) {
      return { invalid: 'invalid' };
    }
    return {
      userId: payload.id,
      labId: li.lab_id,
      instanceId: li.lab_instance_id,
      namespace: li.namespace_name,
      allowedVms: names as string[],
      exp: payload.exp,
    };
  } catch (err) {
    return { invalid: err instanceof joseErrors.JWTExpired ? 'expired' : 'invalid' };
  }
}

/**
 * {LAB_VNC_PROTOCOL}://{LAB_VNC_HOST}:{LAB_VNC_PORT}/{LAB_VNC_PATH}?host=..&port=..
 * &path=[{WS_PROXY_PATH_PREFIX}/]{token}/{first vm}&allowed_vmis=vm1,vm2&autoconnect=1, each value URL-encoded.
 */
export function labVncUrl(vnc: Config['vnc'], token: string, vmNames: string[]): string {
  const path = [vnc.wsProxyPathPrefix, token, vmNames[0]].filter(Boolean).join('/');
  const query = [
    ['host', vnc.wsProxyHost],
    ['port', vnc.wsProxyPort],
    ['path', path],
    ['allowed_vmis', vmNames.join(',')],
    ['autoconnect', '1'],
  ]
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
  return `${vnc.labVncProtocol}://${vnc.labVncHost}:${vnc.labVncPort}/${vnc.labVncPath}?${query}`;
}
