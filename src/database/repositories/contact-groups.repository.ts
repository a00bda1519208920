import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { ContactGroup, StoredContactGroup } from '../schemas';
import { CollectionRepository } from './collection-repository';

/** A contact group as the e-mail notifications read it. */
export type ContactGroupMembers = Pick<StoredContactGroup, 'group' | 'users'>;

/**
 * OpenHIM's `contactgroups` (read only, core's "Contact lists"): the members of the groups named by
 * a task's `notify` or by the defaults of an event type, and which names are not groups. Group names
 * are compared exactly, as core does. Every read settles within a lease (a delivery that waited past
 * it fails and is retried).
 */
@Injectable()
export class ContactGroupsRepository extends CollectionRepository<ContactGroup> {
  constructor(@InjectModel(ContactGroup.name) model: Model<ContactGroup>, config: AppConfig) {
    super(model, config);
  }

  /** The groups among `names` that exist, with their members. */
  async findByNames(names: readonly string[]): Promise<ContactGroupMembers[]> {
    if (!names.length) return [];
    return this.op('findByNames', (o) =>
      this.collection
        .find<ContactGroupMembers>(
          { group: { $in: [...new Set(names)] } },
          { projection: { _id: 0, group: 1, users: 1 }, ...o },
        )
        .toArray(),
    );
  }

  /** The names among `names` that no contact group has. */
  async missing(names: readonly string[]): Promise<string[]> {
    const wanted = [...new Set(names)];
    if (!wanted.length) return [];
    const found = await this.op('missing', (o) =>
      this.collection
        .find<Pick<StoredContactGroup, 'group'>>({ group: { $in: wanted } }, { projection: { _id: 0, group: 1 }, ...o })
        .toArray(),
    );
    const existing = new Set(found.map((group) => group.group));
    return wanted.filter((name) => !existing.has(name));
  }
}

/** What the e-mail notifications use. */
export type ContactGroupsForEmail = Pick<ContactGroupsRepository, 'findByNames' | 'missing'>;
