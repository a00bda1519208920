import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Passport, User } from '../database/schemas';
import { exactCaseInsensitive, PasswordFields } from './credentials';

export interface UserRecord extends PasswordFields {
  _id: Types.ObjectId;
  email: string;
  groups?: string[];
}

export type TokenPassportRecord = PasswordFields & { _id: Types.ObjectId; email: string };

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
    const projection = { email: 1, groups: 1, ...PASSWORD_PROJECTION };
    const exact = await this.users.findOne({ email }, projection).lean<UserRecord>().exec();
    if (exact) return exact;
    return this.users
      .findOne({ email: exactCaseInsensitive(email) }, projection)
      .lean<UserRecord>()
      .exec();
  }

  /** OpenHIM ≥ 7.2 looks the token passport up by the user's stored email. */
  findTokenPassport(email: string): Promise<TokenPassportRecord | null> {
    return this.passports
      .findOne({ protocol: 'token', email }, { email: 1, ...PASSWORD_PROJECTION })
      .lean<TokenPassportRecord>()
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
