import { LockMode, type EntityManager, type FilterQuery } from '@mikro-orm/core';
import { User } from '../entities/index.js';
import { badInput, conflict, notFound } from '../errors.js';
import { paginate, type Connection, type PageArgs, type SortKey } from './pagination.js';
import type { AccountEvents } from './account.events.js';
import { revokeSessions } from './account.service.js';
import { parseId } from './ids.js';
import { searchFilter } from './search.js';

export enum UserOrderField {
  ID = 'ID',
  EMAIL = 'EMAIL',
  FIRST_NAME = 'FIRST_NAME',
  LAST_NAME = 'LAST_NAME',
  DATE_JOINED = 'DATE_JOINED',
}

export enum OrderDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}

export interface UserFilterData {
  search?: string | null;
  isAdmin?: boolean | null;
  isTrusted?: boolean | null;
  isActive?: boolean | null;
}

export interface UserListArgs extends PageArgs {
  filter?: UserFilterData | null;
  orderBy?: { field: UserOrderField; direction?: OrderDirection | null } | null;
}

export interface UserRights {
  isTrusted?: boolean | null;
  isAdmin?: boolean | null;
  isActive?: boolean | null;
}

const cursorValue = (raw: string | number): string => {
  if (typeof raw !== 'string') throw badInput('after', 'Not a cursor for this order');
  return raw;
};

const cursorDate = (raw: string | number): Date => {
  const date = new Date(cursorValue(raw));
  if (Number.isNaN(date.getTime())) throw badInput('after', 'Not a cursor for this order');
  return date;
};

const SORT_FIELDS: Record<UserOrderField, Omit<SortKey, 'direction'>> = {
  [UserOrderField.ID]: { field: 'id' },
  [UserOrderField.EMAIL]: { field: 'email', parse: cursorValue },
  [UserOrderField.FIRST_NAME]: { field: 'firstName', parse: cursorValue },
  [UserOrderField.LAST_NAME]: { field: 'lastName', parse: cursorValue },
  [UserOrderField.DATE_JOINED]: { field: 'dateJoined', parse: cursorDate },
};

/** Reading and administering users. Everyone but an admin sees only themselves; others are NOT_FOUND. */
export class UserService {
  constructor(
    private readonly em: EntityManager,
    private readonly maxPageSize: number,
    private readonly accountEvents: AccountEvents,
  ) {}

  /** Admins: every user matching the filter; others: at most themselves. */
  async list(viewer: User, args: UserListArgs): Promise<Connection<User>> {
    const order = args.orderBy ?? { field: UserOrderField.ID, direction: OrderDirection.ASC };
    const direction = order.direction === OrderDirection.DESC ? 'desc' : 'asc';
    const sort: SortKey = { ...SORT_FIELDS[order.field], direction };
    return paginate(this.em, User, this.where(viewer, args.filter), args, this.maxPageSize, { sort });
  }

  /** @throws NOT_FOUND for a missing user and, for non-admins, for anyone but themselves. */
  async get(viewer: User, id: string): Promise<User> {
    const userId = parseId(id);
    const user = viewer.isAdmin || userId === viewer.id ? await this.em.findOne(User, { id: userId }) : null;
    if (!user) throw notFound('User', id);
    return user;
  }

  /**
   * Sets trust, admin right and activity. Deactivation revokes every session of the user at once.
   * The active admins are locked while checking, so that two admins demoting each other at the
   * same time cannot leave none.
   * @throws NOT_FOUND; CONFLICT (field `isAdmin` or `isActive`) when the last active admin would go.
   */
  async update(id: string, rights: UserRights): Promise<User> {
    const userId = parseId(id);
    const user = await this.em.transactional(async (tx) => {
      const removesAdmin = rights.isAdmin === false || rights.isActive === false;
      const admins = removesAdmin
        ? await tx.find(User, { isAdmin: true, isActive: true }, { lockMode: LockMode.PESSIMISTIC_WRITE })
        : [];
      const target = await tx.findOne(User, { id: userId });
      if (!target) throw notFound('User', id);
      if (admins.some((a) => a.id === target.id) && !admins.some((a) => a.id !== target.id)) {
        throw conflict('The last active admin cannot give up the admin right or be deactivated', rights.isAdmin === false ? 'isAdmin' : 'isActive');
      }
      if (rights.isTrusted != null) target.isTrusted = rights.isTrusted;
      if (rights.isAdmin != null) target.isAdmin = rights.isAdmin;
      if (rights.isActive != null) target.isActive = rights.isActive;
      await tx.flush();
      if (rights.isActive === false) await revokeSessions(tx, target.id);
      return target.id;
    });
    const updated = await this.em.findOneOrFail(User, { id: user }, { refresh: true });
    const { isAdmin, isTrusted, isActive } = updated;
    this.accountEvents.publish({ kind: 'rights', userId: updated.id, isAdmin, isTrusted, isActive });
    return updated;
  }

  private where(viewer: User, filter?: UserFilterData | null): () => FilterQuery<User> {
    const search = searchFilter<User>(filter?.search, ['email', 'first_name', 'last_name']);
    const flags: Record<string, boolean> = {};
    for (const key of ['isAdmin', 'isTrusted', 'isActive'] as const) {
      if (filter?.[key] != null) flags[key] = filter[key]!;
    }
    const scope = viewer.isAdmin ? {} : { id: viewer.id };
    return () => ({ $and: [search(), flags, scope] }) as FilterQuery<User>;
  }
}
