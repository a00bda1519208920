/** Who made the request, as the handlers see it. */
export interface AuthenticatedUser {
  email: string;
  groups: string[];
  /** Member of OpenHIM's `admin` group. */
  isAdmin: boolean;
}
