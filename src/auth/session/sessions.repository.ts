import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Collection } from 'mongodb';
import { Model } from 'mongoose';
import { Session, SessionData } from '../../database/schemas';

type SessionRecord = { _id: string; data: SessionData; updatedAt: Date };

/**
 * OpenHIM core 8's `sessions` collection, written as its koa-session MongooseStore writes it, so a
 * session made on either side works on both and a logout on either side ends it on both.
 */
@Injectable()
export class SessionsRepository {
  private readonly sessions: Collection<SessionRecord>;

  constructor(@InjectModel(Session.name) model: Model<Session>) {
    // Session ids are strings (uuids), which the driver's default ObjectId typing does not allow.
    this.sessions = model.collection as unknown as Collection<SessionRecord>;
  }

  async find(id: string): Promise<SessionData | null> {
    const session = await this.sessions.findOne({ _id: id }, { projection: { data: 1 } });
    return session?.data ?? null;
  }

  /** `{_id, data: {passport: {user: email}, _expire, _maxAge}, updatedAt}`, as core's store saves it. */
  async create(id: string, email: string, maxAgeMs: number, now = Date.now()): Promise<void> {
    await this.sessions.insertOne({
      _id: id,
      data: { passport: { user: email }, _expire: now + maxAgeMs, _maxAge: maxAgeMs },
      updatedAt: new Date(now),
    });
  }

  async destroy(id: string): Promise<void> {
    await this.sessions.deleteOne({ _id: id });
  }
}
