import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import bcrypt from 'bcryptjs';
import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import { AppConfig } from '../config/app-config';
import { hashPassword } from './credentials';
import { CredentialsRepository } from './credentials.repository';

export const DEFAULT_ROOT_EMAIL = 'root@openhim.org';
export const DEFAULT_ROOT_PASSWORD = 'openhim-password';
export const DEFAULT_ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';

/** OpenHIM's default root user, field for field (its hash is sha512hex(salt + 'openhim-password')). */
export function defaultRootUser() {
  return {
    firstname: 'Super',
    surname: 'User',
    email: DEFAULT_ROOT_EMAIL,
    passwordAlgorithm: 'sha512',
    passwordHash: hashPassword('sha512', DEFAULT_ROOT_SALT, DEFAULT_ROOT_PASSWORD),
    passwordSalt: DEFAULT_ROOT_SALT,
    groups: ['admin'],
  };
}

/** Fixed ids, so API replicas starting together collide on `_id` instead of creating two roots. */
const fixedId = (name: string) =>
  new Types.ObjectId(createHash('sha256').update(`openhim-rerun:${name}`).digest('hex').slice(0, 24));
export const DEFAULT_ROOT_USER_ID = fixedId('root-user');
export const DEFAULT_ROOT_PASSPORT_ID = fixedId('root-token-passport');
export const DEFAULT_ROOT_LOCAL_PASSPORT_ID = fixedId('root-local-passport');
/** OpenHIM 8's `api.salt`: the bcrypt cost of its `local` passports. */
const BCRYPT_COST = 10;

/**
 * Creates OpenHIM's default root user when no `root@openhim.org` exists, as OpenHIM core does on
 * start: the legacy sha512 fields on the user (OpenHIM < 7.2), a `token` passport (OpenHIM ≥ 7.2)
 * and a bcrypt `local` passport (OpenHIM 8's console login), so that an OpenHIM core sharing the
 * database accepts it too.
 * `CREATE_DEFAULT_ROOT=false` turns it off. Runs in the API role only.
 */
@Injectable()
export class RootUserBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger('RootUser');

  constructor(
    private readonly repository: CredentialsRepository,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.CREATE_DEFAULT_ROOT) return;
    await this.ensureDefaultRoot();
  }

  /** Returns whether this call created the root user. */
  async ensureDefaultRoot(): Promise<boolean> {
    const root = defaultRootUser();
    const created = await this.repository.insertUserIfAbsent(root, DEFAULT_ROOT_USER_ID);
    // Also completes a root we created earlier whose passport was not written (a crash in between).
    const user = await this.repository.findUserIdByExactEmail(DEFAULT_ROOT_EMAIL);
    if (user && DEFAULT_ROOT_USER_ID.equals(user._id)) {
      await this.repository.insertTokenPassportIfAbsent(
        {
          email: root.email,
          passwordAlgorithm: root.passwordAlgorithm,
          passwordHash: root.passwordHash,
          passwordSalt: root.passwordSalt,
          user: user._id,
        },
        DEFAULT_ROOT_PASSPORT_ID,
      );
      // Hashed only when missing: bcrypt costs ~60 ms.
      if (!(await this.repository.hasPassport(root.email, 'local'))) {
        await this.repository.insertLocalPassportIfAbsent(
          { email: root.email, password: await bcrypt.hash(DEFAULT_ROOT_PASSWORD, BCRYPT_COST), user: user._id },
          DEFAULT_ROOT_LOCAL_PASSPORT_ID,
        );
      }
    }
    if (created) {
      this.logger.warn(
        `Created OpenHIM's default user ${DEFAULT_ROOT_EMAIL} with the default password: change its password now ` +
          '(or set CREATE_DEFAULT_ROOT=false and create users through OpenHIM).',
      );
    }
    return created;
  }
}
