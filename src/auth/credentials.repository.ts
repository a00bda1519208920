import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Passport, User } from '../database/schemas';
import { exactCaseInsensitive, PasswordFields } from './credentials';

export interface UserRecord extends PasswordFields {
  _id: Types.ObjectId;
  email: string;
  groups?: string[];
  /** OpenHIM 8: `local` (bcrypt passport) or `token` (sha fields); absent before 8. */
  provider?: string;
}

/** A `token` passport (sha fields) or a `local` one (OpenHIM ≥ 7.2: `password` is a bcrypt hash). */
export type PassportRecord = PasswordFields & {
  _id: Types.ObjectId;
  email: string;
  protocol: string;
  password?: string;
};

/** A user as OpenHIM shows it to the user itself: every field but the secrets. */
export type PublicUser = Record<string, unknown> & { _id: Types.ObjectId; email: string; groups?: unknown };

/** Never leave the database: password hashes and salts, password-reset tokens. */
const SECRET_USER_FIELDS = { passwordAlgorithm: 0, passwordHash: 0, passwordSalt: 0, token: 0, tokenType: 0 } as const;

const PASSWORD_PROJECTION = { passwordAlgorithm: 1, passwordHash: 1, passwordSalt: 1 } as const;

/** Reads (and, for the default root only, writes) OpenHIM's `users` and `passports`. */
@Injectable()
export class CredentialsRepository {
  constructor(
    @InjectModel(User.name) private readonly users: Model<User>,
    @InjectModel(Passport.name) private readonly passports: Model<Passport>,
  ) {}

  /**
   * The user with this email, matched case-insensitively as OpenHIM does. The exact email is tried
   * first (served by OpenHIM's unique index on `email`); only a miss falls back to the regex.
   */
  async findUser(email: string): Promise<UserRecord | null> {
    const projection = { email: 1, groups: 1, provider: 1, ...PASSWORD_PROJECTION };
    const exact = await this.users.findOne({ email }, projection).lean<UserRecord>().exec();
    if (exact) return exact;
    return this.users
      .findOne({ email: exactCaseInsensitive(email) }, projection)
      .lean<UserRecord>()
      .exec();
  }

  /** OpenHIM core 8 reads a session's user by the exact email the session holds. */
  findPublicUserByExactEmail(email: string): Promise<PublicUser | null> {
    return this.users.findOne({ email }, SECRET_USER_FIELDS).lean<PublicUser>().exec();
  }

  /** The `token` and `local` passports, looked up (as OpenHIM ≥ 7.2 does) by the user's stored email. */
  findPassports(email: string): Promise<PassportRecord[]> {
    return this.passports
      .find(
        { protocol: { $in: ['token', 'local'] }, email },
        { email: 1, protocol: 1, password: 1, ...PASSWORD_PROJECTION },
      )
      .lean<PassportRecord[]>()
      .exec();
  }

  /**
   * Inserts the user unless one with this email exists. `_id` is fixed by the caller, so replicas
   * racing to create the same user collide on the `_id` index (always unique) instead of creating two.
   * Returns whether this call inserted it.
   */
  async insertUserIfAbsent(
    user: Omit<UserRecord, '_id'> & Record<string, unknown>,
    id: Types.ObjectId,
  ): Promise<boolean> {
    return this.upsertOnce(this.users, { email: user.email }, { _id: id, ...user });
  }

  async insertTokenPassportIfAbsent(
    passport: PasswordFields & { email: string; user: Types.ObjectId },
    id: Types.ObjectId,
  ): Promise<boolean> {
    return this.upsertOnce(
      this.passports,
      { protocol: 'token', email: passport.email },
      { _id: id, protocol: 'token', ...passport },
    );
  }

  /** OpenHIM 8's login passport: `password` is a bcrypt hash. */
  async insertLocalPassportIfAbsent(
    passport: { email: string; password: string; user: Types.ObjectId },
    id: Types.ObjectId,
  ): Promise<boolean> {
    return this.upsertOnce(
      this.passports,
      { protocol: 'local', email: passport.email },
      { _id: id, protocol: 'local', ...passport },
    );
  }

  async hasPassport(email: string, protocol: string): Promise<boolean> {
    return Boolean(await this.passports.exists({ protocol, email }).exec());
  }

  findUserIdByExactEmail(email: string): Promise<{ _id: Types.ObjectId } | null> {
    return this.users.findOne({ email }, { _id: 1 }).lean<{ _id: Types.ObjectId }>().exec();
  }

  private async upsertOnce<T>(
    model: Model<T>,
    filter: Record<string, unknown>,
    document: Record<string, unknown>,
  ): Promise<boolean> {
    try {
      const result = await model
        .updateOne(filter, { $setOnInsert: document }, { upsert: true, setDefaultsOnInsert: false, strict: false })
        .exec();
      return result.upsertedCount > 0;
    } catch (error) {
      if ((error as { code?: number }).code === 11000) return false;
      throw error;
    }
  }
}
