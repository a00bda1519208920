/** Who made the request, as the handlers see it. */
export interface AuthenticatedUser {
  email: string;
  groups: string[];
  /** Member of OpenHIM's `admin` group. */
  isAdmin: boolean;
}

export const ADMIN_GROUP = 'admin';

export function toAuthenticatedUser(user: { email: string; groups: string[] }): AuthenticatedUser {
  return { email: user.email, groups: user.groups, isAdmin: user.groups.includes(ADMIN_GROUP) };
}
